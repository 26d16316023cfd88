"""Retrieval evidence: the best cosine of the question and a passage, and the threshold under it is uncertain."""

from __future__ import annotations

from typing import Any

from pipeline.answer.citations import hit_dict
from pipeline.config import Settings

#: Calibrated uncertainty thresholds per embedding model (cosine of the question vs the best
#: passage). Measured by ``bench/calibrate_uncertain.py`` (2026-11): the 30 FAQ questions of the
#: 179 atoms imported from the real Argo CD and Podman docs (questions removed from the bundle) as
#: positives, 40 off-topic and adjacent-IT questions as negatives; the middle of the widest range
#: of maximal accuracy: 0.411 -> accuracy 0.943 (answerable 0.900 certain, off-topic 0.975 uncertain).
UNCERTAIN_BELOW: dict[str, float] = {
    "all-MiniLM-L6-v2": 0.41,
}
#: For models never calibrated: the MiniLM figure; run the calibration and set
#: ``serve.uncertain_below`` for yours.
DEFAULT_UNCERTAIN_BELOW = 0.41


def threshold_for(model_id: str | None, settings: Settings) -> float:
    """The evidence threshold under which an answer is uncertain."""
    if settings.serve.uncertain_below is not None:
        return settings.serve.uncertain_below
    name = (model_id or "").rstrip("/").rsplit("/", 1)[-1]
    return UNCERTAIN_BELOW.get(name, DEFAULT_UNCERTAIN_BELOW)


def evidence_of(hits: list[Any], bundle: Any | None = None, question: str | None = None) -> float:
    """The retrieval evidence: the best cosine of the question and a hit's passage (0: no hits).

    Uses the cosine the search computed when the hit carries it; otherwise embeds the question
    and the hits' passages with the bundle's embedder (one batch).
    """
    if not hits:
        return 0.0
    known = [_hit_cosine(h) for h in hits]
    if all(v is not None for v in known):
        return max(0.0, max(known))
    embedder = getattr(bundle, "embedder", None)
    if embedder is None or question is None:
        return max([0.0] + [v for v in known if v is not None])
    texts = [question] + [str((hit_dict(h)["passage"] or {}).get("text") or hit_dict(h)["title"]) for h in hits]
    vectors = embedder.encode(texts)
    return max(0.0, float((vectors[1:] @ vectors[0]).max()))


def _hit_cosine(hit: Any) -> float | None:
    for name in ("similarity", "dense_score", "cosine", "dense"):
        value = hit.get(name) if isinstance(hit, dict) else getattr(hit, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return None
