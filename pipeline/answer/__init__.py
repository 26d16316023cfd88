"""Answering over an index: evidence, answerability ("I don't know"), citations, conversation history.

``answer(index, question, settings, history=...)`` -> ``Answer`` is the one entry point.
"""

from pipeline.answer.citations import citations_text, describe_source, hit_dict, rank_sources
from pipeline.answer.core import IDK, Answer, answer, llm_configured

__all__ = ["IDK", "Answer", "answer", "citations_text", "describe_source", "hit_dict", "llm_configured", "rank_sources"]
