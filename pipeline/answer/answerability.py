"""Can the knowledge base answer this question? Signals beyond "the nearest passage is near".

Cosine similarity alone cannot tell an in-domain question the knowledge base does not cover
("How do I back up Argo CD with Velero?") from one it does: both sit close to some passage about
the same product. Five signals, each cheap (no model call beyond the search's own embedding):

* ``evidence``: the cosine of the question and the best passage (the search computes it);
* ``coverage``: the share of the question's content terms, weighted by their rarity in the
  corpus (idf) and in general English (``term_weights``: "fighting", "incoming" are how a user
  paraphrases, not the topic), that the best of the top atoms contains: an unanswerable
  question's topic words are missing from the atom it lands on;
* ``missing``: salient words of the question that the whole knowledge base never mentions (a
  word rare in general English, per ``wordfreq`` when installed, whose stem occurs in no
  passage): a topic the knowledge base does not have (Velero, Terraform, SBOM); or that only
  ``RARE_DF`` passages mention, none of them in the atoms the question found (the knowledge
  base names the thing in passing elsewhere, but has nothing about it here), unless it negates a
  word the passages have ("unreachable", "nonroot": ``NEGATING``); and commands or
  flags the question names that no passage writes as such ("with podman top", "--encryption-key":
  every word occurs, the phrase never; ``phrases.py``);
* ``specificity``: how many standard deviations the best passage's cosine stands above the
  question's cosine to the average passage (from the passage vectors' mean and covariance,
  ``index.VectorMoments``): a paraphrase in words unlike the docs' is far from every passage, yet its
  atom still stands out from the rest; an in-domain question on a missing topic is near many passages
  and close to none in particular;
* ``focus``: the same for the atoms' titles (each atom's title passage: its title and summary), scanned
  exactly (``index.TitleVectors``): how many standard deviations the question's nearest title stands above
  its cosines to every title. A question that is about what one atom is about stands out from the other
  atoms' topics even in words unlike the atom's; a missing topic near the product is near many titles.

A question is answerable when no salient word is missing and ``Signals.score()`` (``EVIDENCE_WEIGHT *
evidence + COVERAGE_WEIGHT * coverage + SPECIFICITY_WEIGHT * specificity + FOCUS_WEIGHT * focus``, the
specificity in proportion to coverage up to ``SPECIFICITY_COVERAGE``) reaches the bundle's
calibrated threshold (``calibrate.py``). With an LLM configured the model judges what scores weak
(``core.llm_may_judge``; an answer citing no given atom is refused). With a local cross-encoder
configured (``serve.reranker``, ``answer/rerank.py``), its probability for the answered passage is the
score instead (``Signals.rerank``), calibrated the same way; none is shipped (no weights offline).
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from pipeline.answer.index import TermStats
from pipeline.answer.phrases import missing_phrases

#: Weights of the score's three parts (``Signals.score``): the cosine, term coverage and specificity.
#: Chosen on the tuning sets (tests/data/eval/dev*.jsonl, never on the report splits), the demo
#: bundle's questions and the off-topic lists: over dev-dev3, 81/84 unanswerable caught and 6/186
#: answerable wrongly flagged (cosine + 0.5 coverage alone: 80/84, 5/186); over dev4 (free
#: paraphrase) 39/42 and 51/67 (before 38/42 and 58/67); on the demo's small bundle and the off-topic
#: lists, the same as before.
EVIDENCE_WEIGHT = 1.0
COVERAGE_WEIGHT = 0.5
SPECIFICITY_WEIGHT = 0.1
#: The weight of ``focus`` (added 2026-12-03, with ``calibrate.NEGATIVE_QUANTILE`` 0.5 -> 0.4), chosen on
#: the tuning sets (never the report splits): over dev-dev3 unanswerable caught 81 -> 82/84, answerable
#: wrongly flagged 5 -> 7/186; over dev4 38 -> 38/42 caught and 50 -> 34/67 wrongly flagged; off-topic
#: lists 59 -> 58/60 (refused by the score or a missing word). Alone, its AUC between the answerable and
#: unanswerable questions no missing word refuses is 0.94 on dev-dev3 and 0.79 on dev4 (specificity's:
#: 0.94 and 0.75; the score before it: 0.98 and 0.62).
FOCUS_WEIGHT = 0.2
#: Specificity counts in full only once the atom covers this share of the question's topic words (in
#: proportion below it): on a small bundle of mixed topics an Argo CD question's nearest Argo CD
#: passage stands out from the rest whether it answers or not ("What does context deadline exceeded
#: mean during a sync?" over the demo's 29 atoms: coverage 0.15, specificity 5.2).
SPECIFICITY_COVERAGE = 0.3
#: Specificity counts in full only for a question whose mean cosine to the passages reaches this (in
#: proportion below it): an off-topic question ("symptoms of the flu") is far from every passage, so
#: its cosines spread narrowly and the best one stands out by many deviations without being near.
#: Chosen on the tuning sets and the off-topic lists (calibrate.OFF_TOPIC, tests/data/service/offtopic.txt).
DOMAIN_MEAN = 0.05
#: A name-like word rarer than this in general English (wordfreq's Zipf scale: 3 = once per million
#: words) is salient: when no passage has it, the question is about something the knowledge base lacks.
SALIENT_ZIPF = 4.0
#: Any word rarer than this is salient, name-like or not ("tarball", "jitter"). Chosen on
#: tests/data/eval/dev.jsonl + dev2.jsonl (never on report.jsonl).
ORDINARY_ZIPF = 3.0
#: Coverage is the best share over this many top atoms: the answering atom is often second or third.
COVERAGE_ATOMS = 3
#: Question words and fillers that carry no topic.
STOPWORDS = frozenset(
    """a an the and or but not no nor of in on at to for from by with without into onto over under
    about after before between through during via per as than then so if when where which who whom
    whose what why how whether do does did done doing can could would should shall will may might
    must i me my mine we our us you your it its they them their this that these those there here
    is are was were be been being am have has had get gets got also just only very really please
    any some all each every other another one ones thing things way ways""".split()
)
#: Words of a follow-up that name no topic ("how do I fix it", "what causes that", "an example").
GENERIC = frozenset(
    """fix fixes fixed fixing solve solved solution solutions workaround workarounds cause causes caused
    happen happens happening reason why mean means meaning explain detail details example examples
    work works working keep running run instead else more again right wrong help give show tell
    make sure step steps way ways need want try tried case use using better best faster slower""".split()
)
#: "Mentioned in passing": a salient word in at most this many passages, none of the top atoms'.
RARE_DF = 3
#: Not words of a question: redaction markers with the key they hid (``token=[REDACTED:secret]``,
#: ``agent.redact``) and e-mail addresses pasted along. Left in, they read as topics the knowledge
#: base lacks ("never mentions 'REDACTED'") and pull the search off the question.
NOISE = re.compile(r"(?:[\w.-]+\s*[:=]\s*)?\[REDACTED:[\w-]+\]|\b[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+]*[A-Za-z0-9]|[A-Za-z0-9]")
#: English contractions: "aren't" is "are not", not a word "aren" the corpus lacks (and "'s", "'re",
#: "'ll", "'ve", "'d", "'m" carry no topic). Straight and typographic apostrophes.
_CONTRACTION = re.compile(r"(?i)\b(\w+?)n['\u2019]t\b|['\u2019](?:s|re|ll|ve|d|m)\b")
_NEGATED = {"ca": "can", "wo": "will", "sha": "shall"}  # can't, won't, shan't


def expand_contractions(text: str) -> str:
    """``text`` with "n't" as " not" and the other contracted endings dropped ("aren't" -> "are not")."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return ""
        stem = m.group(1)
        return f"{_NEGATED.get(stem.lower(), stem)} not"

    return _CONTRACTION.sub(one, text)


def plain_question(text: str) -> str:
    """``text`` without ``NOISE`` (what search and the signals see); the text itself when nothing is left."""
    return " ".join(NOISE.sub(" ", text).split()) or text


@functools.cache
def _zipf():
    """wordfreq's English Zipf frequency, or None when the package is missing (then every word
    the corpus lacks counts as salient only when it looks like a name: digits, capitals inside)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return None
    with _ZIPF_LOAD:  # wordfreq reads its word list on first use, unlocked: 50 threads read it 50 times
        zipf_frequency("the", "en")
    return functools.lru_cache(maxsize=65536)(lambda w: zipf_frequency(w, "en"))


_ZIPF_LOAD = threading.Lock()


def warm() -> None:
    """Load what the signals read on first use (wordfreq's list, the stemmer) before requests come."""
    word_zipf("warm")


#: Inflection endings tried when looking a word up in wordfreq: "complains" is as common as
#: "complain" (a word is judged by its most frequent form, so an inflection is no topic of its own).
_ENDINGS = ("ing", "ed", "es", "s", "ly", "er")


def word_forms(word: str) -> set[str]:
    """The word and the base forms its ending suggests ("forbids" -> forbid, "stopped" -> stop)."""
    w = word.lower()
    forms = {w}
    if w.endswith("ies") and len(w) > 5:
        forms.add(w[:-3] + "y")
    for end in _ENDINGS:
        base = w[: -len(end)]
        if w.endswith(end) and len(base) >= 3:
            forms |= {base, base + "e"}
            if len(base) > 3 and base[-1] == base[-2]:
                forms.add(base[:-1])
    return forms


def word_zipf(word: str) -> float | None:
    """Zipf frequency of the word's most frequent form, or None without wordfreq."""
    zipf = _zipf()
    if zipf is None:
        return None
    return max(zipf(f) for f in word_forms(word))


def is_rare_word(word: str, *, first: bool = False) -> bool:
    """Salient: rarer than ``ORDINARY_ZIPF`` in general English (by its most frequent form), or a
    name-like word (capitalised inside the question, an acronym, digits inside) rarer than
    ``SALIENT_ZIPF``. "Flux", "Discord", "Lambda" are names here; "stale", "outgoing", "offline"
    are ordinary words a user paraphrases with, and say nothing about a missing topic. ``first``:
    the word opens the question (its capital says nothing)."""
    z = word_zipf(word)
    name_like = bool(re.search(r"\d|[a-z][A-Z]", word)) or (len(word) > 1 and word.isupper())
    name_like = name_like or (word[:1].isupper() and not first)
    if z is None:
        return bool(re.search(r"\d|[a-z][A-Z]|^[A-Z]{2,}$", word))
    return z < ORDINARY_ZIPF or (name_like and z < SALIENT_ZIPF)


def content_words(text: str, index: Any) -> list[tuple[str, str]]:
    """(word, stem) of the text's content words, in order, once each (hyphens split words)."""
    words = [w for w in _WORD.findall(expand_contractions(text).replace("-", " ")) if w.lower() not in STOPWORDS]
    if not words:
        return []
    stems = index.tokenize(words)
    out: dict[str, str] = {}
    for w, s in zip(words, stems, strict=True):
        if s and s[0] not in out.values():
            out[w] = s[0]
    return list(out.items())


#: Coverage weighs a word by its rarity in the corpus (idf) times its rarity in general English:
#: full weight below ``PLAIN_ZIPF``, falling linearly to ``PLAIN_FLOOR`` at ``COMMON_ZIPF``. A word
#: common in English but rare in technical docs ("fighting", "let", "incoming") is how a user
#: paraphrases, not the topic: without this its high idf decides the coverage. Chosen on
#: tests/data/eval/dev.jsonl + dev2.jsonl (never on report.jsonl).
PLAIN_ZIPF = 4.5
COMMON_ZIPF = 5.5
PLAIN_FLOOR = 0.1


def term_weights(words: list[tuple[str, str]], stats: TermStats) -> dict[str, float]:
    """Each content stem's weight in coverage: corpus idf times English rarity (see ``PLAIN_ZIPF``)."""
    out: dict[str, float] = {}
    for w, s in words:
        z = word_zipf(w)
        share = 1.0
        if z is not None and z > PLAIN_ZIPF:
            share = max(PLAIN_FLOOR, 1.0 - (1.0 - PLAIN_FLOOR) * (z - PLAIN_ZIPF) / (COMMON_ZIPF - PLAIN_ZIPF))
        out[s] = max(out.get(s, 0.0), stats.idf(s) * share)
    return out


@dataclass
class Signals:
    evidence: float = 0.0
    coverage: float = 0.0
    missing: list[str] = field(default_factory=list)
    specificity: float = 0.0
    focus: float = 0.0
    #: The configured cross-encoder's probability that the answered passage answers (``answer/rerank.py``).
    rerank: float | None = None

    def score(self) -> float:
        """What the threshold is compared with: the reranker's probability when one is configured, else
        ``combined()``."""
        return self.rerank if self.rerank is not None else self.combined()

    def combined(self) -> float:
        """The bi-encoder signals' score: cosine, coverage, the specificity coverage lends, and focus."""
        lent = SPECIFICITY_WEIGHT * self.specificity * min(1.0, self.coverage / SPECIFICITY_COVERAGE)
        return EVIDENCE_WEIGHT * self.evidence + COVERAGE_WEIGHT * self.coverage + lent + FOCUS_WEIGHT * self.focus

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.rerank is None:  # no reranker configured: the JSON of every answer stays as it was
            del out["rerank"]
        return out | {"score": round(self.score(), 4)}


def specificity(best: float, query_vector: Any, stats: TermStats) -> float:
    """How many standard deviations the best passage's cosine ``best`` stands above the question's
    cosine to the average passage (``VectorMoments``), scaled down for questions far from the whole
    knowledge base (``DOMAIN_MEAN``): 0 without the moments.

    A question in the knowledge base's vocabulary sits near every passage of its product, answerable
    or not; a paraphrase sits far from all of them. Neither cosine says whether one passage stands out,
    which is what an answerable question shows: "two apps keep fighting over the same object" has a best
    cosine of only 0.34, yet its atom stands well above the rest, unlike a topic the atoms never cover."""
    if stats.moments is None or query_vector is None:
        return 0.0
    mean, std = stats.moments.spread(query_vector)
    return (best - mean) / std * min(1.0, max(mean, 0.0) / DOMAIN_MEAN)


def focus(query_vector: Any, stats: TermStats, exclude: set[int] | None = None) -> float:
    """How many standard deviations the question's nearest atom title stands above its cosines to every
    title (``TitleVectors``; ``exclude``: held-out passages), beyond what the nearest of that many titles
    would by chance (``chance_focus``); 0 without title vectors.

    Over the full Podman + Argo CD docs (198 titles, chance 2.73): "switch off the built-in superuser
    account" shares few words and a cosine of 0.35 with the passages on local users and the admin account,
    yet their atom's title stands 5.9 deviations above the rest (focus 3.2); "how do I fail over Argo CD to
    another region", a topic no atom has, is near many titles alike (2.7 deviations: focus 0.0)."""
    titles = getattr(stats, "titles", None)
    if titles is None or query_vector is None:
        return 0.0
    best, mean, std, n = titles.standing(query_vector, exclude)
    return (best - mean) / std - chance_focus(n) if std > 1e-9 else 0.0


@functools.lru_cache(maxsize=1024)
def chance_focus(n: int) -> float:
    """The expected largest of ``n`` standard normal draws (Blom's approximation): how far the nearest
    of ``n`` titles stands out by chance. The largest z-score grows with the number of titles (at most
    1.4 among 3, typically 2.7 among 198), so without this a bundle of a few atoms, judged at the default
    threshold, would see every question's focus as weak."""
    if n < 2:
        return 0.0
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def signals(
    question: str,
    hits: list[Any],
    index: Any,
    stats: TermStats,
    exclude: set[int] | None = None,
    query_vector: Any | None = None,
    rerank: float | None = None,
) -> Signals:
    """The signals of ``question`` given its search ``hits`` (best first) and its embedding
    ``query_vector`` (encoded here when not given and the index has an embedder); ``rerank``: the
    reranker's probability for the first hit, when one is configured."""
    if not hits:
        return Signals()
    evidence = max(float(getattr(h, "dense_score", 0.0) or 0.0) for h in hits)
    if query_vector is None and stats.moments is not None and getattr(index, "embedder", None) is not None:
        query_vector = index.embedder.encode([question])[0]
    spec = specificity(evidence, query_vector, stats)
    near_title = focus(query_vector, stats, exclude)
    words = content_words(question, index)
    weights = term_weights(words, stats)
    total = sum(weights.values())
    coverage = 1.0
    if all(w.lower() in GENERIC for w, _ in words):
        # "how do I fix that?", "what does this do?" name no topic: nothing can be shown to cover it, and
        # their cosines spread narrowly, so the best passage "stands out" by chance (no specificity or focus)
        coverage = spec = near_title = 0.0
    elif total:
        tops = [stats.terms_of(h.atom_id, exclude) for h in hits[:COVERAGE_ATOMS]]
        coverage = max(sum(v for s, v in weights.items() if s in terms) / total for terms in tops)
    opening = next(iter(_WORD.findall(question)), "")
    rare = {w for w, _ in words if salient(w, index, stats, first=w == opening)}
    missing = [w for w, s in words if stats.df.get(s, 0) == 0 and w in rare]
    near = frozenset().union(*(stats.terms_of(h.atom_id, exclude) for h in hits[:3]))
    missing += [w for w, s in words if 0 < stats.df.get(s, 0) <= RARE_DF and s not in near and w in rare]
    missing += [p for p in missing_phrases(question, index, stats, word_zipf, STOPWORDS, exclude) if p not in missing]
    if exclude:  # a term only the held-out passages had is missing too
        missing += [
            w for w, s in words if w not in missing and stats.df.get(s, 0) and w in rare and _only_in(stats, s, exclude)
        ]
    return Signals(
        evidence=round(evidence, 4),
        coverage=round(coverage, 4),
        missing=missing,
        specificity=round(spec, 4),
        focus=round(near_title, 4),
        rerank=None if rerank is None else round(rerank, 4),
    )


#: Negating prefixes: "unreachable", "nonroot" say no more than "reachable", "root" (a state of a
#: thing the knowledge base covers, not a topic it lacks).
NEGATING = ("un", "non")


def salient(word: str, index: Any, stats: TermStats, *, first: bool = False) -> bool:
    """A word that names a topic when the knowledge base lacks it: rare (``is_rare_word``) and not a
    negation of a word the passages have (``negates_known``)."""
    return is_rare_word(word, first=first) and not negates_known(word, index, stats)


def negates_known(word: str, index: Any, stats: TermStats) -> bool:
    """Whether ``word`` is a negating prefix on a word some passage has ("unreachable": "reachable")."""
    w = word.lower()
    rest = [w[len(p) :].lstrip("-") for p in NEGATING if w.startswith(p) and len(w) - len(p) >= 4]
    return any(stems and stats.df.get(stems[0], 0) > 0 for stems in index.tokenize(rest)) if rest else False


def _only_in(stats: TermStats, stem: str, exclude: set[int]) -> bool:
    return all(i in exclude for i in stats.passages_with(stem).tolist())


@dataclass
class Verdict:
    uncertain: bool
    reason: str
    signals: Signals


def judge(sig: Signals, threshold: float) -> Verdict:
    """Uncertain when a salient word is missing or the combined score is under ``threshold``."""
    if sig.missing:
        words = ", ".join(f"'{w}'" for w in sig.missing[:3])
        return Verdict(True, f"the knowledge base never mentions {words}", sig)
    if sig.score() < threshold:
        parts = (
            f"cosine {sig.evidence:.2f}, coverage {sig.coverage:.2f}, specificity {sig.specificity:.1f}, "
            f"focus {sig.focus:.1f}"
        )
        if sig.rerank is not None:
            return Verdict(True, f"weak evidence (reranker {sig.rerank:.2f} < {threshold:.2f}; {parts})", sig)
        return Verdict(True, f"weak evidence ({parts} -> {sig.score():.2f} < {threshold:.2f})", sig)
    return Verdict(False, "", sig)
