"""BM25 over the passages with bm25s: its tokenizer (English stopwords) and a Snowball stemmer.

The bundle stores each passage's stemmed tokens, so loading a bundle rebuilds the BM25 matrix
without re-tokenising, and a query is tokenised the same way the passages were.
"""

from __future__ import annotations

import functools

import numpy as np

TOKENIZER = "bm25s-english-snowball"  # how passages were tokenised; part of the bundle schema


@functools.cache
def _stemmer():
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # pragma: no cover - PyStemmer is a core dependency
        return None


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lowercased, stopword-free, stemmed tokens per text."""
    import bm25s

    if not texts:
        return []
    return bm25s.tokenize(list(texts), stemmer=_stemmer(), return_ids=False, show_progress=False)


class Lexical:
    """A BM25 index over tokenised passages; ``scores(query)`` gives one score per passage."""

    def __init__(self, corpus_tokens: list[list[str]]):
        import bm25s

        self.size = len(corpus_tokens)
        self._bm25 = bm25s.BM25()
        # an empty passage would make bm25s drop it; keep positions aligned with a filler token
        docs = [toks if toks else ["\x00"] for toks in corpus_tokens]
        if docs:
            self._bm25.index(docs, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        tokens = tokenize([query])[0] if query.strip() else []
        if not tokens or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
