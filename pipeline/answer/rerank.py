"""Hits reordered by the configured cross-encoder (``serve.reranker``), and the score the verdict uses.

With a reranker the question is judged by what a model reading the question and the passage together
says of the passage that would be answered: its probability replaces the bi-encoder signals' combined
score (``Signals.score``), on a threshold calibrated on the bundle's own questions (``calibrate.py``).
Without one nothing here runs."""

from __future__ import annotations

from typing import Any


def hit_text(hit: Any) -> str:
    """What the reranker reads of a hit: the atom title, then the passage (as passages are embedded)."""
    passage = getattr(hit, "passage", None) or {}
    text = passage.get("text", "") if isinstance(passage, dict) else getattr(passage, "text", "")
    return f"{getattr(hit, 'title', '')}\n{text}".strip()


def reading_depth(settings: Any, k: int) -> int:
    """How many of a question's hits the reranker reads: ``serve.rerank_depth``, at least the ``k``
    answered from (``k`` without a reranker)."""
    return max(k, settings.serve.rerank_depth) if settings.serve.reranker else k


def rerank(
    reranker: Any, question: str, hits: list[Any], read: int, *, keep_order: bool = False
) -> tuple[list[Any], float | None]:
    """(``hits`` with the first ``read`` reordered by the reranker and the rest after them in search
    order, the reranker's probability for the new first hit).

    Without a reranker (or hits): ``(hits, None)``. ``keep_order``: an elliptic follow-up, whose hits
    put the atoms the conversation cited first on purpose; only the first is scored."""
    if reranker is None or not hits or not question.strip():
        return hits, None
    if keep_order:
        return hits, float(reranker.score(question, [hit_text(hits[0])])[0])
    head = hits[:read]
    scores = reranker.score(question, [hit_text(h) for h in head])
    order = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: the search's order breaks ties
    return [head[i] for i in order] + hits[read:], float(scores[order[0]])
