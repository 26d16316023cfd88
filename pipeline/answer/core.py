"""Answer a question from a loaded bundle, with citations a person can check.

Two ways to answer, one rule: never more than the knowledge base says.

* With an LLM configured (``llm.base_url`` or the key in ``llm.api_key_env``): the retrieved
  atoms' text goes to the model, which must cite atoms by id as ``[atom-id]``. An answer that
  cites no retrieved atom is refused (``uncertain: true``, no citations); one that also cites ids
  it was never shown stays, flagged uncertain.
* Without: extractive. The best FAQ pair (or section) of the best atom is the answer, verbatim.

``uncertain`` is also true when the retrieval evidence is weak: the cosine similarity between the
question and the best matching passage is below a threshold calibrated on real data (see
``UNCERTAIN_BELOW`` and ``bench/calibrate_uncertain.py``). Overridable with
``serve.uncertain_below``.
"""

from __future__ import annotations

from typing import Any

from pipeline.answer.evidence import evidence_of, threshold_for
from pipeline.answer.extractive import extractive_answer
from pipeline.answer.llm import llm_answer
from pipeline.answer.model import IDK, Answer, BundleLike
from pipeline.config import Settings, secret


def llm_configured(settings: Settings) -> bool:
    """An LLM is configured when it has an endpoint or a key; otherwise answers are extractive."""
    return bool(settings.llm.base_url or secret(settings.llm.api_key_env))


def answer(
    bundle: BundleLike,
    question: str,
    settings: Settings,
    llm: Any | None = None,
    *,
    k: int = 5,
    model_id: str | None = None,
    threshold: float | None = None,
) -> Answer:
    """Answer ``question`` from ``bundle``: LLM-grounded when ``llm`` is given or configured.

    ``threshold``: the evidence under which the answer is uncertain (``calibration.calibrate``
    measures it per bundle); default: the setting or the embedding model's calibrated figure.
    """
    question = question.strip()
    hits = bundle.search(question, k=k) if question else []
    evidence = evidence_of(hits, bundle, question)
    if model_id is None:
        model_id = _bundle_model(bundle)
    if threshold is None:
        threshold = threshold_for(model_id, settings)
    weak = evidence < threshold
    if llm is None and llm_configured(settings):
        from pipeline.backends.llm import make_client

        llm = make_client(settings)
    if not hits:
        return Answer(IDK, True, [], evidence, threshold, "llm" if llm else "extractive", "no atom matched")
    if llm is not None:
        result = llm_answer(bundle, question, hits, llm)
    else:
        result = extractive_answer(bundle, hits, weak)
    result.evidence, result.threshold = evidence, threshold
    if weak:
        result.uncertain = True
        result.reason = result.reason or f"weak retrieval evidence ({evidence:.2f} < {threshold:.2f})"
    return result


def _bundle_model(bundle: Any) -> str | None:
    manifest = getattr(bundle, "manifest", None)
    embedding = getattr(manifest, "embedding", None)
    return getattr(embedding, "model", None)
