"""What answering needs from an index, as a small Protocol (the DuckDB bundle implements it).

A second index (Postgres + pgvector, ``pipeline/index/postgres.py``) answers questions as soon as
it offers these members:

* ``search(query, k, filters, *, query_vector=None, exclude_passages=None)``: hits best first,
  each with ``atom_id``, ``title``, ``type``, ``status``, ``score``, ``passage`` (``kind``,
  ``heading``, ``text``), ``sources`` and ``dense_score`` (the cosine of the query and the atom's
  best passage). ``exclude_passages`` (passage ids) is how calibration holds an FAQ pair or a
  whole atom out, so it must be honoured exactly.
* ``atom(atom_id)``: the atom as a dict (front matter fields, ``body``, ``faq``, ``sources``, ``path``).
* ``faq_questions()``: ``(atom_id, question, [own passage ids])`` for every FAQ pair.
* ``passage_tokens()``: ``(atom_id, stemmed tokens)`` per passage in passage-id order, and
  ``tokenize(texts)``: the same tokenizer for a question's words (one list per text). From them answering builds its term
  statistics (document frequency, each atom's terms) once per loaded index.
* ``passage_vectors()``: the (passages x dim) unit vectors, for finding near-duplicate atoms
  when calibrating and for their moments (``VectorMoments``), both only at load time; and
  ``passage_kinds()`` (optional): each passage's kind in passage-id order, whose ``title``
  passages (an atom's title and summary) ``TitleVectors`` keeps.
* ``embedder`` (``encode(texts)``) and ``manifest.embedding.model``.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol

import numpy as np


class AnswerIndex(Protocol):
    embedder: Any
    manifest: Any

    def search(
        self,
        query: str,
        k: int = 10,
        filters: dict | None = None,
        *,
        query_vector: Any | None = None,
        exclude_passages: list[int] | None = None,
    ) -> list[Any]: ...

    def atom(self, atom_id: str) -> dict | None: ...

    def faq_questions(self) -> list[tuple[str, str, list[int]]]: ...

    def passage_tokens(self) -> list[tuple[str, list[str]]]: ...

    def tokenize(self, texts: list[str]) -> list[list[str]]: ...

    def passage_vectors(self) -> Any: ...


PHRASE_CACHE = 4096  # phrases remembered per loaded index
MOMENT_CHUNK = 65536  # passage vectors summed at a time: bounded memory at a million passages


@dataclass(frozen=True)
class VectorMoments:
    """The mean and covariance of the passage vectors: a question's cosine to every passage has mean
    ``v . mean`` and variance ``v' cov v``, so how far its best passage stands out from the rest
    (``answerability.specificity``) costs one 384 x 384 product, not a scan of every passage."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, vectors: Any) -> VectorMoments | None:
        """The moments of ``vectors`` (rows), or None for fewer than two."""
        if vectors is None or len(vectors) < 2:
            return None
        n, dim = len(vectors), vectors.shape[1]
        total, outer = np.zeros(dim), np.zeros((dim, dim))
        for at in range(0, n, MOMENT_CHUNK):
            chunk = np.asarray(vectors[at : at + MOMENT_CHUNK], dtype=np.float32)  # float32 BLAS: 2x faster
            total += chunk.sum(axis=0, dtype=np.float64)
            outer += chunk.T @ chunk
        mean = total / n
        cov = outer / n - np.outer(mean, mean)
        # shrunk toward the average variance: from fewer passages than dimensions the covariance is
        # singular, and a question off its span would get a vanishing deviation (any cosine "stands out")
        shrink = dim / (n + dim)
        return cls(mean, (1 - shrink) * cov + shrink * np.trace(cov) / dim * np.eye(dim))

    def spread(self, vector: Any) -> tuple[float, float]:
        """(mean, standard deviation) of ``vector``'s cosine over the passages."""
        v = np.asarray(vector, dtype=np.float64)
        return float(v @ self.mean), float(np.sqrt(max(float(v @ self.cov @ v), 1e-12)))


@dataclass(frozen=True)
class TitleVectors:
    """The vectors of the atoms' title passages (each atom's title and summary: what it is about), for
    ``answerability.focus``: how far a question's nearest title stands out from its cosines to them all.

    A scan, not moments: the nearest title anywhere is what tells (the titles of the atoms search ranked
    first miss it for a paraphrase), and one product over the titles gives the mean and spread exactly.
    One float32 row per title passage (about one per atom) is kept."""

    ids: np.ndarray  # passage ids of the title passages, ascending
    vectors: np.ndarray  # (titles x dim) float32

    @classmethod
    def of(cls, kinds: list[str] | None, vectors: Any) -> TitleVectors | None:
        """The title passages' rows of ``vectors``; None for fewer than two, or kinds that do not match."""
        if not kinds or vectors is None or len(kinds) != len(vectors):
            return None
        ids = np.flatnonzero(np.asarray(kinds, dtype=object) == "title")
        if len(ids) < 2:
            return None
        return cls(ids, np.ascontiguousarray(np.asarray(vectors)[ids], dtype=np.float32))

    def standing(self, vector: Any, exclude: set[int] | None = None) -> tuple[float, float, float, int]:
        """(best, mean, standard deviation, count) of ``vector``'s cosine over the title passages not in
        ``exclude`` (calibration's held-out atoms); zeros when fewer than two remain."""
        cos = self.vectors @ np.asarray(vector, dtype=np.float32)
        if exclude:
            cos = cos[~np.isin(self.ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))]
        if len(cos) < 2:
            return 0.0, 0.0, 0.0, len(cos)
        return float(cos.max()), float(cos.mean()), float(cos.std()), len(cos)


@dataclass
class TermStats:
    """Document frequency of each stemmed term over passages, and each atom's passages' terms."""

    passages: int
    df: dict[str, int]
    atom_terms: dict[str, frozenset[str]]
    passage_atom: list[str] = field(default_factory=list)
    passage_terms: list[frozenset[str]] = field(default_factory=list)
    #: Each passage's stemmed tokens in order (shared with the index, not copied): phrases are looked up here.
    passage_tokens: list[list[str]] = field(default_factory=list, repr=False)
    _phrases: dict[tuple[str, ...], tuple[int, ...]] = field(default_factory=dict, repr=False)
    _passages_of: dict[str, list[int]] = field(default_factory=dict, repr=False)
    #: Positional postings (term -> row, CSR row pointers, token offsets, passage starts): ``_inverted``.
    _postings: tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )
    _build_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: The passage vectors' moments (None when the index offers no vectors): ``answerability.specificity``.
    moments: VectorMoments | None = field(default=None, repr=False, compare=False)
    #: The title passages' vectors (None without vectors or passage kinds): ``answerability.focus``.
    titles: TitleVectors | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, index: Any) -> TermStats:
        rows = index.passage_tokens()
        terms: dict[str, set[str]] = {}
        passage_terms = [frozenset(tokens) for _, tokens in rows]
        df = dict(Counter(chain.from_iterable(passage_terms)))  # counted in C, not term by term
        for (atom_id, _), unique in zip(rows, passage_terms, strict=True):
            terms.setdefault(atom_id, set()).update(unique)
        stats = cls(
            len(rows),
            df,
            {a: frozenset(t) for a, t in terms.items()},
            [a for a, _ in rows],
            passage_terms,
            [tokens for _, tokens in rows],
        )
        for i, (atom_id, _) in enumerate(rows):
            stats._passages_of.setdefault(atom_id, []).append(i)
        read = getattr(index, "passage_vectors", None)
        vectors = read() if read is not None else None
        stats.moments = VectorMoments.of(vectors)
        kinds = getattr(index, "passage_kinds", None)
        stats.titles = TitleVectors.of(kinds(), vectors) if kinds is not None else None
        return stats

    def idf(self, term: str) -> float:
        n = self.df.get(term, 0)
        return math.log(1.0 + (self.passages - n + 0.5) / (n + 0.5))

    def terms_of(self, atom_id: str, exclude: set[int] | None = None) -> frozenset[str]:
        """The atom's terms, without those only in ``exclude``d passages (calibration hold-outs)."""
        if not exclude:
            return self.atom_terms.get(atom_id, frozenset())
        out: set[str] = set()
        for i in self._passages_of.get(atom_id, []):
            if i not in exclude:
                out |= self.passage_terms[i]
        return frozenset(out)

    def has_phrase(self, stems: tuple[str, ...], exclude: set[int] | None = None) -> bool:
        """Whether some passage (not ``exclude``d) has these 2-3 stems adjacent, in this order.

        Looked up on demand and remembered (only command-shaped questions ask): a table of every
        2-3 gram would cost minutes and gigabytes to build at a million passages."""
        hits = self._phrases.get(stems)
        if hits is None:
            hits = self._phrase_hits(stems)
            if len(self._phrases) >= PHRASE_CACHE:
                self._phrases.clear()  # bounded; a clear is safe under concurrent asks, an eviction is not
            self._phrases[stems] = hits
        return any(i not in (exclude or ()) for i in hits)

    def passages_with(self, term: str) -> np.ndarray:
        """The sorted ids of the passages that have ``term``."""
        at, starts = self._positions(term), self._inverted()[3]
        return np.unique(np.searchsorted(starts, at, side="right") - 1)

    def _positions(self, term: str) -> np.ndarray:
        """Where ``term`` occurs, as ascending offsets into all passages' tokens laid end to end."""
        rows, indptr, offsets, _ = self._inverted()
        t = rows.get(term)
        return offsets[indptr[t] : indptr[t + 1]] if t is not None else offsets[:0]

    def _inverted(self) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """Each term's token offsets (CSR over ``passage_tokens`` laid end to end) and each passage's first
        offset, built once, when a first phrase (or a term only held-out passages have) is looked up: before,
        each such lookup scanned every passage (~0.1 s at a million passages). ``bench/phrase_lookup.py``
        measures the lookups and this build."""
        if self._postings is not None:  # built: no lock on the lookups' path
            return self._postings
        with self._build_lock:
            if self._postings is None:
                rows = {t: i for i, t in enumerate(self.df)}  # df counts exactly the terms of the tokens
                tokens = self.passage_tokens
                lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
                starts = np.zeros(len(tokens) + 1, dtype=np.int64)
                np.cumsum(lengths, out=starts[1:])
                ids = np.fromiter(map(rows.__getitem__, chain.from_iterable(tokens)), np.int32, count=int(starts[-1]))
                wide = np.int32 if starts[-1] < 2**31 else np.int64
                offsets = np.argsort(ids, kind="stable").astype(wide)  # by term, each term's offsets ascending
                offsets.flags.writeable = False
                indptr = np.zeros(len(rows) + 1, dtype=np.int64)
                np.cumsum(np.bincount(ids, minlength=len(rows)), out=indptr[1:])
                self._postings = (rows, indptr, offsets, starts)
            return self._postings

    def _phrase_hits(self, stems: tuple[str, ...]) -> tuple[int, ...]:
        if any(self.df.get(t, 0) == 0 for t in stems):
            return ()
        # where the phrase would start, from its rarest stem's offsets, kept where each other stem follows
        at = [self._positions(t) for t in stems]
        first = min(range(len(stems)), key=lambda k: len(at[k]))
        start = at[first].astype(np.int64) - first
        for k in sorted(range(len(stems)), key=lambda k: len(at[k])):
            if k != first:
                want = start + k
                i = np.searchsorted(at[k], want)
                start = start[at[k][np.minimum(i, len(at[k]) - 1)] == want]
        starts = self._inverted()[3]
        doc = np.searchsorted(starts, start, side="right") - 1
        inside = (start >= 0) & (start + len(stems) <= starts[doc + 1])  # the whole phrase in one passage
        return tuple(np.unique(doc[inside]).tolist())

    def atom_passages(self, atom_id: str) -> list[int]:
        return list(self._passages_of.get(atom_id, []))
