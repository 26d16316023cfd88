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
    """A BM25 index over tokenised passages; ``scores(query)`` gives one score per passage.

    bm25s' own scorer answers queries; its index is built here with numpy (``bm25_arrays``), the
    same float32 scores bm25s computes passage by passage in Python (16 s of a 100k-passage load).
    """

    def __init__(self, corpus_tokens: list[list[str]]):
        import bm25s

        self.size = len(corpus_tokens)
        self._bm25 = bm25s.BM25()
        # an empty passage would make bm25s drop it; keep positions aligned with a filler token
        docs = [toks if toks else ["\x00"] for toks in corpus_tokens]
        if docs and not numpy_index_fits(bm25s.__version__):
            self._bm25.index(docs, show_progress=False)  # slower, but bm25s' own layout whatever it is
        elif docs:
            vocab, data, indices, indptr = bm25_arrays(docs, self._bm25.k1, self._bm25.b)
            self._bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": len(docs)}
            vocab[""] = len(vocab)  # bm25s' empty token: no postings
            self._bm25.vocab_dict = vocab
            self._bm25.unique_token_ids_set = set(vocab.values())
            self._bm25.nonoccurrence_array = None

    def scores(self, query: str) -> np.ndarray:
        tokens = tokenize([query])[0] if query.strip() else []
        if not tokens or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)


#: bm25s versions whose index layout ``Lexical`` writes itself (``scores`` CSC dict, ``vocab_dict``,
#: ``unique_token_ids_set``, ``nonoccurrence_array``): tests/index/test_load_speed.py compares it
#: bitwise with bm25s' own on the locked version. Any other version indexes through bm25s.
NUMPY_INDEX_VERSIONS = ("0.3.",)


def numpy_index_fits(version: str) -> bool:
    """Whether ``bm25_arrays`` may stand in for bm25s' ``index()`` under this bm25s version."""
    return version.startswith(NUMPY_INDEX_VERSIONS)


def bm25_arrays(
    docs: list[list[str]], k1: float, b: float
) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """(vocab, data, indices, indptr): bm25s' Lucene BM25 score matrix in CSC form (term columns).

    Per (passage, term): float32(idf32 * tf / (k1 * (1 - b + b * len / avg_len) + tf)) in float64,
    as bm25s computes it, so scores and rankings are bm25s' own (tests compare both bitwise).
    """
    vocab: dict[str, int] = {}
    add = vocab.setdefault
    ids = np.fromiter((add(t, len(vocab)) for doc in docs for t in doc), dtype=np.int64)
    lengths = np.fromiter((len(doc) for doc in docs), dtype=np.int64, count=len(docs))
    n_docs, n_vocab = len(docs), len(vocab)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    pairs, tf = np.unique(ids * n_docs + doc_of, return_counts=True)  # sorted by term, then passage
    term, doc = pairs // n_docs, pairs % n_docs
    df = np.bincount(term, minlength=n_vocab)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    avg = lengths.mean()
    norm = k1 * ((1 - b) + b * lengths[doc] / avg)
    data = (idf[term].astype(np.float64) * (tf / (norm + tf))).astype(np.float32)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return vocab, data, doc.astype(np.int32), indptr
