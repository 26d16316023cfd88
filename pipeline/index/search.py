"""Hybrid retrieval over passages held in memory: exact dense scan + BM25, fused, per atom.

Dense: one float32 matrix (passages x dim, unit rows) times the query vector: an exact scan at
the memory floor; or, for large bundles, an approximate index (``pipeline.index.ann``: HNSW or
int8, opted into with ``serve.dense``) whose candidates are re-scored with the same vectors.
Lexical: BM25 scores for every passage (bm25s). The two rankings are fused by reciprocal rank
(RRF, k=60) over the top candidates of each; passages are then grouped by atom (an atom scores
its best passage) and the best ``k`` atoms are returned with the passage that matched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from pipeline.errors import InputError
from pipeline.models import ATOM_TYPES, STATUSES

RRF_K = 60
FILTER_KEYS = ("type", "status", "tag", "tags")


@dataclass
class Hit:
    """One atom found by a search, with the passage that matched best and the atom's sources.

    ``score`` is the fused reciprocal-rank score (higher is better; at most 2/61 ~ 0.033 when
    a passage ranks first both ways). ``dense_score`` is the best cosine between the query and
    any passage of the atom (-1..1; use it to decide an answer is uncertain); ``lexical_score``
    the best BM25 score of its passages (0 when no query term occurs).
    """

    atom_id: str
    title: str
    type: str
    status: str
    score: float
    passage: dict[str, Any]
    sources: list[dict[str, Any]] = field(default_factory=list)
    dense_score: float = 0.0
    lexical_score: float = 0.0
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "atom_id": self.atom_id,
            "title": self.title,
            "type": self.type,
            "status": self.status,
            "score": self.score,
            "passage": dict(self.passage),
            "sources": [dict(s) for s in self.sources],
            "dense_score": self.dense_score,
            "lexical_score": self.lexical_score,
        }


class Match(NamedTuple):
    """An atom (by index) with its fused score, best passage and raw scores (the search core's output).

    A NamedTuple rather than a frozen dataclass: making ten per query costs ~1 µs instead of ~20."""

    atom: int
    score: float
    passage: int
    dense: float
    lexical: float


class SearchCore:
    """The arrays a search needs; read-only after construction, so safe to share between threads.

    ``vectors``: (n, dim) float32, unit rows. ``atom_of``: passage -> atom index, passages of
    one atom contiguous (``starts``/``ends`` per atom). ``lexical``: an object whose
    ``scores(query)`` returns one BM25 score per passage, or None for dense-only search.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        atom_of: np.ndarray,
        n_atoms: int,
        lexical: Any | None = None,
        atom_fields: Mapping[str, list[Any]] | None = None,
        dense_index: Any | None = None,
    ):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # an approximate index over the same vectors (``ann.FaissDense``); None: the exact scan
        self.dense_index = dense_index if getattr(dense_index, "kind", "exact") != "exact" else None
        self.atom_of = np.asarray(atom_of, dtype=np.int64)
        self.n_atoms = n_atoms
        self.lexical = lexical
        if len(self.atom_of) and np.any(np.diff(self.atom_of) < 0):
            raise ValueError("passages must be grouped by atom (atom_of non-decreasing)")
        self.starts = np.searchsorted(self.atom_of, np.arange(n_atoms), side="left")
        self.ends = np.searchsorted(self.atom_of, np.arange(n_atoms), side="right")
        fields = atom_fields or {}
        self._types = np.array(fields.get("type", [""] * n_atoms), dtype=object)
        self._statuses = np.array(fields.get("status", [""] * n_atoms), dtype=object)
        self._tags: list[set[str]] = [set(t) for t in fields.get("tags", [[] for _ in range(n_atoms)])]

    @property
    def size(self) -> int:
        return len(self.atom_of)

    # filters -----------------------------------------------------------------------------
    def passage_mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """Passages of atoms matching every filter (a list value matches any of its items)."""
        if not filters:
            return None
        keep = np.ones(self.n_atoms, dtype=bool)
        for key, value in filters.items():
            if value is None or value == [] or value == "":
                continue
            wanted = {str(v) for v in (value if isinstance(value, (list, tuple, set)) else [value])}
            if key == "type":
                _check(key, wanted, ATOM_TYPES)
                keep &= np.isin(self._types, list(wanted))
            elif key == "status":
                _check(key, wanted, STATUSES)
                keep &= np.isin(self._statuses, list(wanted))
            elif key in ("tag", "tags"):
                keep &= np.fromiter((bool(t & wanted) for t in self._tags), dtype=bool, count=self.n_atoms)
            else:
                raise InputError(
                    f"unknown search filter '{key}'",
                    "Filter by 'type', 'status' or 'tag' (a value or a list of values).",
                )
        return keep[self.atom_of]

    # search ------------------------------------------------------------------------------
    def dense_scores(self, query_vector: np.ndarray) -> np.ndarray:
        return self.vectors @ np.asarray(query_vector, dtype=np.float32)

    def search(
        self,
        query_vector: np.ndarray | None,
        query: str = "",
        k: int = 10,
        mask: np.ndarray | None = None,
        candidates: int | None = None,
        dense: np.ndarray | None = None,
    ) -> list[Match]:
        """The best ``k`` atoms for the query (vector and/or text), fused by reciprocal rank.

        ``dense``: cosine per passage computed elsewhere (the Postgres index's HNSW query; -inf for
        passages it did not return), used instead of scanning ``vectors``.
        """
        n = self.size
        if n == 0 or k <= 0:
            return []
        depth = min(n, candidates or max(50, 5 * k))
        ids: list[np.ndarray] = []
        contrib: list[np.ndarray] = []
        if dense is None and query_vector is not None and self.dense_index is not None:
            return self._search_ann(np.asarray(query_vector, dtype=np.float32), query, k, mask, depth)
        if dense is None and query_vector is not None:
            dense = self.dense_scores(query_vector)
        if dense is not None:
            if mask is not None:
                dense = np.where(mask, dense, -np.inf)
            top = _top(dense, depth)
            top = top[np.isfinite(dense[top])]
            if self.lexical is None or not query.strip():
                return self._dense_only(top, dense[top], k)
            ids.append(top)
            contrib.append(1.0 / (RRF_K + 1 + np.arange(len(top))))
        lex = None
        if self.lexical is not None and query.strip():
            lex, top = self._lexical_top(query, mask, depth)
            ids.append(top)
            contrib.append(1.0 / (RRF_K + 1 + np.arange(len(top))))
        return self._fuse(ids, contrib, k, dense, lex)

    def _lexical_top(self, query: str, mask: np.ndarray | None, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """BM25 per passage (0 where masked out) and the best ``depth`` passages that match at all."""
        assert self.lexical is not None  # only called with a lexical side
        lex = self.lexical.scores(query)
        if mask is not None:
            lex = np.where(mask, lex, 0.0)
        top = _top(lex, depth)
        return lex, top[lex[top] > 0]

    def _search_ann(self, q: np.ndarray, query: str, k: int, mask: np.ndarray | None, depth: int) -> list[Match]:
        """As ``search``, with the dense candidates from the approximate index (re-scored exactly)."""
        assert self.dense_index is not None  # _search_ann is only called with an index
        top, scores = self.dense_index.top(q, depth, mask)
        if self.lexical is None or not query.strip():  # dense only: the candidates' scores are all we need
            return self._dense_only(top, scores, k)
        ids = [top]
        contrib = [1.0 / (RRF_K + 1 + np.arange(len(top)))]
        lex, lt = self._lexical_top(query, mask, depth)
        ids.append(lt)
        contrib.append(1.0 / (RRF_K + 1 + np.arange(len(lt))))
        return self._fuse(ids, contrib, k, _LazyDense(self.vectors, q, mask), lex)

    def _dense_only(self, top: np.ndarray, scores: np.ndarray, k: int) -> list[Match]:
        """``_fuse`` for one dense ranking (best first): an atom's best passage is its first one in
        that order, so grouping is one pass over the (<= depth) candidates; the same matches."""
        out: list[Match] = []
        seen: set[int] = set()
        passages, dense = top.tolist(), scores.tolist()
        for rank, a in enumerate(self.atom_of[top].tolist()):
            if a not in seen:
                seen.add(a)
                out.append(Match(a, 1.0 / (RRF_K + 1 + rank), passages[rank], dense[rank], 0.0))
                if len(out) == k:
                    break
        return out

    def _fuse(self, ids: list[np.ndarray], contrib: list[np.ndarray], k: int, dense: Any, lex: Any) -> list[Match]:
        if not ids or not sum(len(i) for i in ids):
            return []
        if len(ids) == 1:
            passages, fused = ids[0], contrib[0]
        else:  # a passage found both ways adds both reciprocal ranks
            passages, inverse = np.unique(np.concatenate(ids), return_inverse=True)
            fused = np.bincount(inverse, weights=np.concatenate(contrib))
        atoms = self.atom_of[passages]
        order = np.lexsort((passages, -fused, atoms))  # per atom: best fused first (ties: lower id)
        grouped = atoms[order]
        firsts = order[np.concatenate(([True], grouped[1:] != grouped[:-1]))]
        firsts = firsts[np.lexsort((atoms[firsts], -fused[firsts]))][:k]
        out = []
        for i in firsts:
            a, p = int(atoms[i]), int(passages[i])
            lo, hi = self.starts[a], self.ends[a]
            if dense is None:
                d = 0.0
            elif lex is None:  # dense only: the atom's best passage is the one ranked, no need to scan
                d = float(dense[p])
            else:
                d = float(dense[lo:hi].max())
            lx = float(lex[lo:hi].max()) if lex is not None else 0.0
            out.append(Match(a, float(fused[i]), p, d, lx))
        return out


class _LazyDense:
    """Dense scores computed only for the slices asked (the atoms returned), not every passage."""

    def __init__(self, vectors: np.ndarray, q: np.ndarray, mask: np.ndarray | None):
        self.vectors, self.q, self.mask = vectors, q, mask

    def __getitem__(self, key: Any) -> Any:
        scores = self.vectors[key] @ self.q
        if self.mask is not None:
            scores = np.where(self.mask[key], scores, -np.inf)
        return scores


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first."""
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")
    idx = np.argpartition(-scores, n - 1)[:n]
    return idx[np.argsort(-scores[idx], kind="stable")]


def _check(key: str, wanted: set[str], allowed: tuple[str, ...]) -> None:
    bad = sorted(wanted - set(allowed))
    if bad:
        raise InputError(f"search filter {key}={bad[0]!r} is not a known {key}", f"Known values: {', '.join(allowed)}.")
