"""The reranking plug-in point: ``Reranker.score(question, texts)`` -> one probability per text."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np


class Reranker(ABC):
    """Base class: subclasses implement ``_score`` over (question, text) pairs.

    Scores are probabilities in [0, 1] that the text answers the question (a relevance cross-encoder's
    sigmoid), so a threshold on them means the same for every question. ``calls`` and ``pairs_scored``
    count the work done (tests and the bench read them)."""

    model_id: str = ""
    backend: str = ""

    def __init__(self) -> None:
        self.calls = 0
        self.pairs_scored = 0
        self._count_lock = threading.Lock()

    def score(self, question: str, texts: list[str]) -> np.ndarray:
        """How well each of ``texts`` answers ``question``: float64 array in [0, 1], one per text."""
        return self.score_pairs([(question, t) for t in texts])

    def score_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """``score`` for many (question, text) pairs at once (calibration batches them)."""
        if not pairs:
            return np.zeros(0)
        out = np.clip(np.asarray(self._score([(str(q), str(t)) for q, t in pairs]), dtype=np.float64), 0.0, 1.0)
        with self._count_lock:
            self.calls += 1
            self.pairs_scored += len(pairs)
        return out.reshape(-1)

    @abstractmethod
    def _score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Probabilities for the pairs (``score_pairs`` clips, counts and flattens them)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id} backend={self.backend}>"
