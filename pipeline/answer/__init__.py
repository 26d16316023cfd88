"""Answering over an index: evidence and uncertainty, citations, extractive and LLM-grounded answers."""

from pipeline.answer.citations import citations_text, describe_source, hit_dict, rank_sources
from pipeline.answer.core import answer, llm_configured
from pipeline.answer.evidence import UNCERTAIN_BELOW, evidence_of, threshold_for
from pipeline.answer.model import Answer

__all__ = [
    "UNCERTAIN_BELOW",
    "Answer",
    "answer",
    "citations_text",
    "describe_source",
    "evidence_of",
    "hit_dict",
    "llm_configured",
    "rank_sources",
    "threshold_for",
]
