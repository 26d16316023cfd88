"""Answering over an index: evidence, answerability ("I don't know"), citations, conversation history.

``answer(index, question, settings, history=...)`` -> ``Answer`` is the one entry point.
"""

from pipeline.answer.core import IDK, Answer, answer, llm_configured

__all__ = ["IDK", "Answer", "answer", "llm_configured"]
