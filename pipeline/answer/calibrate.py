"""The answerability threshold of a loaded index, measured on in-domain questions it provides.

Off-topic negatives ("capital of France") say nothing about the questions that matter: in-domain
ones the knowledge base does not cover, whose cosine overlaps the answerable ones'. The bundle
itself provides both kinds from its FAQ pairs:

* answerable: each FAQ question with only its own FAQ entry's question held out. The pair's
  passage is hidden from search and its answer (with the atom's title, as a passage is embedded)
  stands in for it, so the question must be matched through the answer and the atom's other
  passages, as a user's rephrasing would;
* unanswerable: the same question with its whole atom held out, plus its near-duplicates (atoms
  with a passage at cosine >= ``NEAR_DUPLICATE``: imported docs repeat themselves), so nothing
  that answers it is left; plus ``OFF_TOPIC``.

A pair whose two searches land on the same atom is dropped: another atom answers it (a
duplicate the near-duplicate test missed), so it is neither kind. The threshold on
``Signals.score()`` is the ``NEGATIVE_QUANTILE`` quantile of the in-domain unanswerable scores
(questions already refused for a missing salient word do not take part): the bundle tells how
high a question can score on a neighbouring atom; how much of that to refuse was chosen on
tests/data/eval/dev.jsonl. Why not the gap between both kinds: a held-out question matched only
through its answer scores lower than a user's rephrasing of a question the atom holds, so the
bundle's answerable side is pessimistic (its flagged share is reported, not used). Fewer than
``MIN_NEGATIVES`` usable pairs: ``DEFAULT_THRESHOLD``.

With a reranker (``serve.reranker``) the same questions are scored by it instead (``Signals.rerank``:
the best probability over the passages each search found, and over the held-out answer for an
answerable one), and the threshold is the middle of the widest gap where the bundle's answerable and
unanswerable questions are told apart best (``best_threshold``): a cross-encoder reads the question with
the answer itself, so the answerable side is not the pessimistic one it is for the cosine.
``RERANK_DEFAULT_THRESHOLD`` when too few.

A bundle file's calibration is kept between processes (``serve.calibration_cache``; ``cached_path``):
measuring it costs seconds (half a minute with a reranker), and ``kb ask`` loads the bundle anew on
every run. The key is everything the result depends on: the bundle's checksum (its every row and
vector), the code of answering, search and the encoders (``CALIBRATED_BY``) and its constants, the
embedding and reranking models, and wordfreq's presence and version.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.answer.answerability import (
    Signals,
    content_words,
    salient,
    signals,
    specificity,
    term_weights,
)
from pipeline.answer.index import TermStats
from pipeline.answer.rerank import hit_text, reading_depth
from pipeline.config import Settings

MIN_NEGATIVES = 10
MAX_POSITIVES = 200
#: With a reranker each question costs ``rerank_depth`` + 1 model passes, twice: fewer questions.
RERANK_POSITIVES = 60
NEAR_DUPLICATE = 0.9
#: Chosen on tests/data/eval/dev*.jsonl and the demo bundle's questions (never on the report splits);
#: 0.5 before ``answerability.FOCUS_WEIGHT`` (chosen with it).
NEGATIVE_QUANTILE = 0.4
#: For bundles too small to measure: about the threshold this calibration gives the bundle of the
#: real Podman + Argo CD docs (all of tests/data/docs, all-MiniLM-L6-v2; bench/answerability_eval.py:
#: 1.227 with focus, whose chance level it takes away, 1.774 without; before focus 1.214 since a negated
#: known word is no missing topic in the held-out questions either, 1.232 before that; 0.853 before
#: specificity, on the scale of cosine + 0.5 coverage).
DEFAULT_THRESHOLD = 1.23
#: A relevance cross-encoder's probability: even odds that the passage answers.
RERANK_DEFAULT_THRESHOLD = 0.5

#: Off-topic negatives (written for kb, CC0; same list as tests/data/service/offtopic.txt).
OFF_TOPIC: tuple[str, ...] = (
    "What is a good recipe for banana bread?",
    "Who won the football world cup in 2014?",
    "How many moons does Jupiter have?",
    "What is the capital of Australia?",
    "How do I knit a scarf for beginners?",
    "What are the symptoms of the flu?",
    "How long should I boil an egg?",
    "Which wine goes well with salmon?",
    "How do I train my dog to sit?",
    "What is the best time of year to visit Japan?",
    "Who wrote Pride and Prejudice?",
    "How do I grow tomatoes on a balcony?",
    "What is the plot of Hamlet?",
    "Write me a poem about the sea.",
    "Tell me a joke about cats.",
    "How do I centre a div in CSS?",
    "How do I reverse a linked list in Java?",
    "How do I create a pivot table in Excel?",
    "How do I undo the last git commit?",
    "What is the difference between TCP and UDP?",
)


@dataclass
class Calibration:
    threshold: float
    source: str  # setting | bundle | default
    accuracy: float | None = None
    positives: int = 0
    negatives: int = 0
    answerable_flagged: float | None = None  # share of the bundle's answerable questions refused
    unanswerable_flagged: float | None = None  # share of its in-domain unanswerable ones refused
    scale: str = "signals"  # signals | reranker: what the threshold is compared with (Signals.score)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_threshold(pos: list[float], neg: list[float]) -> tuple[float, float, float, float]:
    """(threshold, accuracy, low, high): the middle of the widest gap between data points where the
    accuracy is maximal (as far as the data allows from both kinds of question)."""
    points = sorted(set(pos) | set(neg))
    gaps = (
        [(points[0] - 0.05, points[0])]
        + list(zip(points, points[1:], strict=False))
        + [(points[-1], points[-1] + 0.05)]
    )

    def accuracy(t: float) -> float:
        return (sum(p >= t for p in pos) + sum(n < t for n in neg)) / (len(pos) + len(neg))

    scored = [(accuracy((lo + hi) / 2), hi - lo, lo, hi) for lo, hi in gaps]
    top = max(a for a, *_ in scored)
    _, _, low, high = max((x for x in scored if x[0] == top), key=lambda x: x[1])
    return (low + high) / 2, top, low, high


def near_duplicates(index: Any, stats: TermStats, atom_id: str, vectors: np.ndarray | None) -> list[str]:
    """The atom and the atoms with a passage at cosine >= NEAR_DUPLICATE to one of its passages."""
    own = stats.atom_passages(atom_id)
    if vectors is None or not own:
        return [atom_id]
    best = (vectors @ vectors[own].T).max(axis=1)
    found = {stats.passage_atom[i] for i in np.nonzero(best >= NEAR_DUPLICATE)[0]}
    return [atom_id] + sorted(found - {atom_id})


def calibration_signals(
    index: Any, stats: TermStats, limit: int = MAX_POSITIVES, reranker: Any | None = None, depth: int = 5
) -> tuple[list[Signals], list[Signals]]:
    """(answerable, unanswerable) signals of the index's own FAQ questions (see the module doc); with a
    ``reranker``, each carries its probability (``Signals.rerank``) over the ``depth`` atoms searched."""
    pairs = list(index.faq_questions())
    if len(pairs) > limit:
        step = len(pairs) / limit
        pairs = [pairs[int(i * step)] for i in range(limit)]
    if not pairs:
        return [], []
    faq = {}
    for atom_id, q, _ in pairs:
        atom = index.atom(atom_id) or {}
        answer = next((p.get("answer", "") for p in atom.get("faq") or [] if p.get("question", "").strip() == q), "")
        faq[(atom_id, q)] = f"{atom.get('title', '')}\nA: {answer}"
    questions = [q for _, q, _ in pairs]
    qvec = index.embedder.encode(questions)
    avec = index.embedder.encode([faq[(a, q)] for a, q, _ in pairs])
    answer_tokens = index.tokenize([faq[(a, q)] for a, q, _ in pairs])
    vectors = index.passage_vectors()
    pos, neg = [], []
    depth = depth if reranker is not None else 5
    candidates: list[list[str]] = []  # per question in pos + neg order: the texts the reranker reads
    for i, (atom_id, q, own) in enumerate(pairs):
        held = set(own)
        found = index.search(q, k=depth, query_vector=qvec[i], exclude_passages=list(own))
        hits = found[:5]
        candidates.append([hit_text(h) for h in found] + [faq[(atom_id, q)]])
        sig = signals(q, hits, index, stats, held, qvec[i])
        cos = float(np.dot(qvec[i], avec[i]))
        if not hits or cos > sig.evidence:  # the answer passage would be the best match
            terms = stats.terms_of(atom_id, held) | frozenset(answer_tokens[i])
            words = content_words(q, index)
            weights = term_weights(words, stats)
            total = sum(weights.values())
            coverage = sum(v for s, v in weights.items() if s in terms) / total if total else 1.0
            missing = [w for w, s in words if s not in terms and stats.df.get(s, 0) == 0 and salient(w, index, stats)]
            sig = Signals(
                evidence=round(cos, 4),
                coverage=round(coverage, 4),
                missing=missing,
                specificity=round(specificity(cos, qvec[i], stats), 4),
                focus=sig.focus,  # the atom's title passage is not held out: the search's own
            )
        pos.append(sig)
        held_atoms = near_duplicates(index, stats, atom_id, vectors)
        gone = {p for a in held_atoms for p in stats.atom_passages(a)}
        found = index.search(q, k=depth, query_vector=qvec[i], exclude_passages=sorted(gone))
        candidates.append([hit_text(h) for h in found])
        neg.append(signals(q, found[:5], index, stats, gone, qvec[i]))
    ovec = index.embedder.encode(list(OFF_TOPIC))
    for i, q in enumerate(OFF_TOPIC):
        found = index.search(q, k=depth, query_vector=ovec[i])
        candidates.append([hit_text(h) for h in found])
        neg.append(signals(q, found[:5], index, stats, query_vector=ovec[i]))
    if reranker is not None:
        asked = [q for _, q, _ in pairs]
        asked = [q for pair in zip(asked, asked, strict=True) for q in pair] + list(OFF_TOPIC)  # pos, neg, ...
        order = [s for pair in zip(pos, neg[: len(pos)], strict=True) for s in pair] + neg[len(pos) :]
        flat = [(q, t) for q, texts in zip(asked, candidates, strict=True) for t in texts]
        scores = reranker.score_pairs(flat)  # one batch: the model's own batching does the rest
        at = 0
        for sig, texts in zip(order, candidates, strict=True):
            sig.rerank = round(float(scores[at : at + len(texts)].max()), 4) if texts else 0.0
            at += len(texts)
    return pos, neg


#: The packages whose code a calibration runs: answering, search and tokenising, the encoders.
CALIBRATED_BY = ("answer", "index", "backends/embed", "backends/rerank")


@functools.cache
def _code_fingerprint() -> str:
    """The code calibration runs and wordfreq's version (a change to a signal, to search or to a word
    list is a different calibration; an upgrade of kb never reads an older one)."""
    import importlib.metadata

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in CALIBRATED_BY:
        for source in sorted((root / package).glob("*.py")):
            digest.update(source.name.encode() + source.read_bytes())
    try:
        digest.update(importlib.metadata.version("wordfreq").encode())
    except importlib.metadata.PackageNotFoundError:
        digest.update(b"no wordfreq")
    return digest.hexdigest()


def _constants() -> dict[str, Any]:
    """The tunable constants as they are now (read at call time: a test may set one)."""
    from pipeline.answer import answerability

    out: dict[str, Any] = {}
    for module in (answerability, sys.modules[__name__]):
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, (int, float, str, tuple, frozenset)):
                out[f"{module.__name__}.{name}"] = sorted(value) if isinstance(value, frozenset) else value
    return out


def _files(location: str | None) -> list[Any]:
    """(name, size, mtime) of a model directory's files: a replaced model is another calibration."""
    if not location:
        return []
    folder = Path(location).expanduser()
    try:
        return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    except OSError:
        return []


def cached_path(index: Any, settings: Settings, reranker: Any | None) -> Path | None:
    """Where ``index``'s calibration is kept between processes; None when it is not kept (turned off,
    or not a bundle file: a Postgres index changes under the same name)."""
    checksum = getattr(getattr(index, "manifest", None), "checksum", None)
    if not settings.serve.calibration_cache or getattr(index, "kind", None) != "bundle" or not checksum:
        return None
    from pipeline.backends.embed.base import cache_dir

    embedder = getattr(index, "embedder", None)
    key = {
        "checksum": checksum,
        "code": _code_fingerprint(),
        "constants": _constants(),
        "embedder": [getattr(embedder, "model_id", ""), getattr(embedder, "backend", "")],
        "wordfreq": importlib.util.find_spec("wordfreq") is not None,  # importable (a version may linger)
        "reranker": None
        if reranker is None
        else [reranker.backend, reranker.model_id, _files(settings.serve.reranker), settings.serve.rerank_depth],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return cache_dir() / "calibration" / f"{digest}.json"


def _read(path: Path | None) -> Calibration | None:
    if path is None:
        return None
    try:
        return Calibration(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # missing, half-written by a crash, or another version's
        return None


def _keep(path: Path | None, cal: Calibration) -> Calibration:
    """Write ``cal`` to ``path`` atomically (a reader never sees half a file); a cache that cannot be
    written (read-only home) is only slower."""
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cal.to_dict()), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass
    return cal


def calibrate(index: Any, settings: Settings, stats: TermStats | None = None) -> Calibration:
    """The threshold for ``index``: the setting if given, else kept from an earlier measurement of the
    same bundle (``cached_path``), else measured on the index, else the default."""
    from pipeline.backends.rerank import load_reranker

    reranker = load_reranker(settings)
    if settings.serve.uncertain_below is not None or getattr(index, "embedder", None) is None:
        return _measure(index, settings, stats, reranker)
    path = cached_path(index, settings, reranker)
    kept = _read(path)
    return kept if kept is not None else _keep(path, _measure(index, settings, stats, reranker))


def _found_apart(p: Signals, n: Signals) -> bool:
    """Whether a pair's two searches scored different passages (the answerable one's atom was found)."""
    pairs = ((p.evidence, n.evidence), (p.coverage, n.coverage), (p.specificity, n.specificity))
    return any(abs(a - b) > 1e-9 for a, b in pairs)


def _measure(index: Any, settings: Settings, stats: TermStats | None, reranker: Any | None) -> Calibration:
    scale = "signals" if reranker is None else "reranker"
    default = DEFAULT_THRESHOLD if reranker is None else RERANK_DEFAULT_THRESHOLD
    if settings.serve.uncertain_below is not None:
        return Calibration(settings.serve.uncertain_below, "setting", scale=scale)
    if getattr(index, "embedder", None) is None:
        return Calibration(default, "default", scale=scale)
    stats = stats or TermStats.of(index)
    limit = MAX_POSITIVES if reranker is None else RERANK_POSITIVES
    pos, neg = calibration_signals(index, stats, limit, reranker=reranker, depth=reading_depth(settings, 5))
    # a pair whose searches found the same atom tells nothing (judged on the signals, not the reranker;
    # not on focus, which differs whenever the held-out atoms' titles do)
    pairs = [(p, n) for p, n in zip(pos, neg, strict=False) if _found_apart(p, n)]
    in_domain = [n.score() for _, n in pairs if not n.missing]
    if len(in_domain) < MIN_NEGATIVES:
        return Calibration(default, "default", positives=len(pairs), negatives=len(in_domain), scale=scale)
    kept = [p for p, _ in pairs]
    negatives = [n for _, n in pairs] + neg[len(pos) :]
    if reranker is None:
        threshold = float(np.quantile(in_domain, NEGATIVE_QUANTILE))
    else:
        judged = [s.score() for s in kept if not s.missing], [s.score() for s in negatives if not s.missing]
        threshold = best_threshold(*judged)[0] if all(judged) else default
        seen = judged[0] + judged[1]
        if not seen or not min(seen) < threshold <= max(seen):
            # best to answer all or refuse all: the model does not tell this bundle's questions apart
            return Calibration(default, "default", positives=len(kept), negatives=len(negatives), scale=scale)
    flagged_pos = sum(1 for s in kept if s.missing or s.score() < threshold) / len(kept)
    flagged_neg = sum(1 for s in negatives if s.missing or s.score() < threshold) / len(negatives)
    accuracy = ((1 - flagged_pos) * len(kept) + flagged_neg * len(negatives)) / (len(kept) + len(negatives))
    return Calibration(
        round(threshold, 4),
        "bundle",
        round(accuracy, 4),
        len(kept),
        len(negatives),
        round(flagged_pos, 4),
        round(flagged_neg, 4),
        scale,
    )
