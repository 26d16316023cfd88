"""The offline distillation backend: interviewer questions + the expert's verbatim answers.

No model and no network. Each interviewer turn that asks a question, followed by an expert's
turn, becomes a FAQ pair whose answer is the expert's own words (cut at a sentence boundary)
and whose source quote is exactly that answer, verified with ``verify_quote`` (timestamps
refined from word timings). Pairs are grouped by topic (shared keywords, rapidfuzz) into
``faq`` atoms titled from the topic's keywords.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from pipeline.config import Settings
from pipeline.models import Interview, InterviewSource, Transcript
from pipeline.reporting import Reporter
from pipeline.stages.distill.windows import Turn, turns
from pipeline.stages.distill.writer import Draft
from pipeline.transcripts.grounding import verify_quote

PROMPT = "extractive-v1"

_SENT = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'+#.-]*[A-Za-z0-9+#]|[A-Za-z]")
STOPWORDS = frozenset(
    """a about above across actual actually after again against ago all almost along already also although always
    am among an and another any anybody anyone anything anyway anywhere are aren't around as ask asked asking at
    away back bad basically be became because become becomes been before being believe below best better between
    big bit both bring brought but by call called came can can't cannot case certain certainly change changed
    changes come comes coming completely could couldn't course curious day days deal describe did didn't
    different do does doesn't doing don't done down during each easy either else end enough entire even ever
    every everybody everyone everything exactly example fact far feel felt few find fine first for found from
    full fun further gave get gets getting give given gives giving go goes going gone gonna good got gotten great
    guess had hadn't half happen happened happens happy hard has hasn't have haven't having he he's hear heard
    help her here here's hers herself hey him himself his hmm hope how however huge i i'd i'll i'm i've idea if
    imagine important in instead interesting into is isn't it it'd it'll it's its itself just keep kind knew
    know known knows large last later least less let let's life like likely little long look looked looking
    looks lot lots love made main make makes making man many may maybe me mean means meant might mind more most
    much must my myself need needed needs never new next nice no nobody none nor not nothing now obviously of
    off often oh ok okay old on once one ones only open or other others our ours ourselves out over own part
    people perhaps person place point pretty probably problem pull put quite rather read real really reason
    right run running said same saw say saying says see seeing seem seems seen set several she she's short
    should show side since small so some somebody somehow someone something sometimes somewhat somewhere sort
    sound sounds speak start started stuff such super sure take taken takes taking talk talked talking tell
    than thank thanks that that'll that's the their theirs them themselves then there there's these they
    they'd they'll they're they've thing things think thinking thought three through time times to today
    together told too took top totally toward tried true try trying turn two uh um under understand until up
    upon us use used useful uses using usually very want wanted wants was wasn't way ways we we'd we'll we're
    we've well went were weren't what what's whatever when where whether which while who who's whole whom whose
    why will with within without won't wonder word words work worked works world would wouldn't wow yeah year
    years yes yet you you'd you'll you're you've your yours yourself yourselves
    zero four five six seven eight nine ten hundred hundreds thousand thousands million millions billion billions
    second seconds minute minutes hour hours this mine able anymore began chance consider wrong""".split()
)


@dataclass
class Pair:
    question: str
    answer: str
    source: InterviewSource
    asker: str
    expert: str
    keywords: list[str] = field(default_factory=list)


def _question_of(text: str) -> str | None:
    """The interviewer's question: the last question among the turn's final sentences.

    A short question ("Can you expand a little bit?") keeps the sentence before it, which says
    what it is about. Verbatim, so it can be found in the transcript.
    """
    sentences = [s.strip() for s in _SENT.split(text) if s.strip()]
    tail = sentences[-3:]  # only a question near the end of the turn is what the expert answers next
    idx = [i for i, s in enumerate(tail) if s.endswith("?")]
    if not idx:
        return None
    i = idx[-1]
    q = tail[i]
    before = sentences[len(sentences) - len(tail) + i - 1] if len(sentences) - len(tail) + i >= 1 else None
    if len(q.split()) < 7 and before:
        q = before + " " + q
    if len(q.split()) < 4:
        return None
    words = q.split()
    return " ".join(words[-40:]) if len(words) > 40 else q


def _answer_of(text: str, max_words: int) -> str:
    """The turn's opening, cut at the last sentence end within ``max_words`` (a verbatim slice)."""
    text = text.strip()
    spans = [m.end() for m in re.finditer(r"\S+", text)]
    if len(spans) <= max_words:
        return text
    cut = text[: spans[max_words - 1]]
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", cut)]
    if ends and ends[-1] >= len(cut) // 3:
        return cut[: ends[-1]]
    return cut


def pairs(transcript: Transcript, settings: Settings, reporter: Reporter) -> list[Pair]:
    """Question/answer pairs: an interviewer's question, then the next expert turn."""
    ts = turns(transcript)
    out: list[Pair] = []
    cfg = settings.distill
    for i, turn in enumerate(ts[:-1]):
        if turn.role != "interviewer":
            continue
        question = _question_of(turn.text)
        if question is None:
            continue
        nxt: Turn = ts[i + 1]
        if nxt.role != "expert" or len(nxt.text.split()) < 12:
            continue
        answer = _answer_of(nxt.text, cfg.answer_max_words)
        g = verify_quote(
            transcript, nxt.name, nxt.start, nxt.end, answer, threshold=cfg.quote_threshold, slack_s=cfg.quote_slack_s
        )
        if not g.ok:
            reporter.warn(f"{transcript.interview}: answer at {nxt.start:.1f} s not grounded ({g.reason}); skipped")
            continue
        source = InterviewSource(
            interview=transcript.interview,
            speaker=nxt.name,
            start=float(g.start if g.start is not None else nxt.start),
            end=float(g.end if g.end is not None else nxt.end),
            quote=answer,
        )
        out.append(Pair(question, answer, source, turn.name, nxt.name))
    return out


_NAME = re.compile(
    r"(?<![.!?]\s)(?<!^)\b([A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*|[A-Z][a-z]+[A-Z][A-Za-z]*|[A-Z]{2,}[a-z]?)\b"
)


def _keywords(pairs_: list[Pair], top: int = 8, exclude: frozenset[str] = frozenset()) -> None:
    """Each pair's topic words: frequent, rarer across pairs, named in the question, or tool-like names."""
    docs = [
        Counter(
            w.lower() for w in _WORD.findall(p.question + " " + p.answer) if _ok_word(w) and w.lower() not in exclude
        )
        for p in pairs_
    ]
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    for p, d in zip(pairs_, docs, strict=True):
        qwords = {w.lower() for w in _WORD.findall(p.question) if _ok_word(w)}
        names = {w.lower() for w in _NAME.findall(p.question + " " + p.answer)}
        scored = {
            w: c * (2.0 if w in qwords else 1.0) * (2.0 if w in names else 1.0) * math.log((1 + n) / (1 + df[w]) + 1.5)
            for w, c in d.items()
        }
        p.keywords = [w for w, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def _ok_word(w: str) -> bool:
    lw = w.lower().strip("'.")
    return len(lw) >= 3 and lw not in STOPWORDS and not lw.isdigit() and not lw.endswith(("ly", "'s", "n't"))


MAX_ATOM_WORDS = 750


def group(pairs_: list[Pair], threshold: float, cap: int, exclude: frozenset[str] = frozenset()) -> list[list[Pair]]:
    """Greedy topic clusters: a pair joins the best cluster whose keywords it shares enough of.

    The cluster holding the previous pair gets a bonus (a conversation stays on a topic for a
    while); clusters stop growing at ``cap`` pairs or about one screen of words.
    """
    _keywords(pairs_, exclude=exclude)
    clusters: list[tuple[list[str], list[Pair]]] = []
    for p in pairs_:
        best, best_score = None, -1.0
        words = len(p.question.split()) + len(p.answer.split())
        for kws, members in clusters:
            size = sum(len(m.question.split()) + len(m.answer.split()) for m in members)
            if len(members) >= cap or size + words > MAX_ATOM_WORDS:
                continue
            score = fuzz.token_set_ratio(" ".join(p.keywords[:5]), " ".join(kws))
            if members[-1] is pairs_[pairs_.index(p) - 1]:
                score += 15
            if score > best_score:
                best, best_score = (kws, members), score
        if best is not None and best_score >= threshold:
            best[1].append(p)
            best[0].extend(k for k in p.keywords[:5] if k not in best[0])
        else:
            clusters.append((list(p.keywords[:5]), [p]))
    return [members for _, members in clusters]


def _display_forms(pairs_: list[Pair]) -> dict[str, str]:
    """The most common spelling of each keyword as written (keeps DNS, Kubernetes, PostgreSQL)."""
    forms: dict[str, Counter[str]] = {}
    for p in pairs_:
        for w in _WORD.findall(p.question + " " + p.answer):
            forms.setdefault(w.lower(), Counter())[w] += 1
    return {k: c.most_common(1)[0][0] for k, c in forms.items()}


def _topic(members: list[Pair], forms: dict[str, str]) -> list[str]:
    score: Counter[str] = Counter()
    for p in members:
        for rank, k in enumerate(p.keywords):
            score[k] += len(p.keywords) - rank
    return [forms.get(k, k) for k, _ in score.most_common(3)]


def drafts(transcript: Transcript, interview: Interview | None, settings: Settings, reporter: Reporter) -> list[Draft]:
    """FAQ drafts for one transcript (empty when it has no interviewer questions answered by an expert)."""
    found = pairs(transcript, settings, reporter)
    if not found:
        return []
    title = interview.title if interview else transcript.interview
    forms = _display_forms(found)
    out: list[Draft] = []
    used: set[str] = set()
    names = {sp.name for sp in transcript.speakers} | {p.name for p in (interview.people if interview else [])}
    exclude = frozenset(w.lower() for n in names for w in _WORD.findall(n))
    for members in group(found, settings.distill.topic_threshold, settings.distill.pairs_per_atom, exclude):
        topic = _topic(members, forms)
        words = topic[:1] if len(topic) == 1 else [*topic[:-1]]
        label = ", ".join(words) + (f" and {topic[-1]}" if len(topic) > 1 else "")
        label = label[:1].upper() + label[1:]
        atom_title = label
        n = 2
        while atom_title.lower() in used:
            atom_title = f"{label} ({title}, part {n})"
            n += 1
        used.add(atom_title.lower())
        experts = sorted({p.expert for p in members})
        askers = sorted({p.asker for p in members})
        context = (
            f'Questions {" and ".join(askers)} asked in "{title}" about {label.lower() if label.islower() else label}, '
            f"answered in {' and '.join(experts)}'s own words (verbatim from the transcript; "
            "edit freely, kb will not overwrite your changes)."
        )
        out.append(
            Draft(
                type="faq",
                title=atom_title,
                summary=f'What {" and ".join(experts)} said about {label} in "{title}".',
                context=context,
                faq=[(p.question, p.answer) for p in members],
                tags=sorted({k.lower() for k in topic}),
                sources=[p.source for p in members],
                kind="extractive",
                prompt=PROMPT,
            )
        )
    return out
