"""The reader both index stores share (the DuckDB bundle and Postgres): one implementation, one ranking.

Both stores hold the same ``BundleContent``; ``IndexReader`` builds the in-memory side of a
loaded index from it once (atoms, FAQ pairs, sources, segments, passages, BM25 over the stored
tokens, filters) and answers every reading method and the hybrid search. A store only says how
the dense side is scored (``_dense``): the bundle scans its vectors in memory (or its ANN index),
Postgres asks its HNSW index. So both rank the same way, with the same fusion over the same tokens.

What answering needs of either store is ``pipeline.answer.index.AnswerIndex``; ``IndexReader``
implements it once for both. ``kind`` says which store it is and ``manifest.checksum`` which bundle.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipeline import telemetry
from pipeline.index.content import BundleContent
from pipeline.index.lexical import Lexical
from pipeline.index.search import Hit, SearchCore
from pipeline.models import Manifest


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class IndexReader:
    """The reading methods and hybrid search over one loaded ``BundleContent`` (see the module doc).

    Thread-safe for concurrent reads: nothing mutates after construction.
    """

    kind = "bundle"
    dense_kind = "exact"

    def __init__(self, manifest: Manifest, content: BundleContent, embedder: Any, dense_index: Any = None) -> None:
        self.manifest = manifest
        self.embedder = embedder
        self._atoms: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        for atom_id, atype, status, title, summary, tags, meta, body, apath in content.atoms:
            self._order.append(atom_id)
            self._atoms[atom_id] = {
                "type": atype,
                "status": status,
                "title": title,
                "summary": summary,
                "tags": list(tags or []),
                "meta": meta,  # JSON text until first read (``_meta``): parsing 100k at load took seconds
                "body": body,
                "path": apath,
            }
        self._faq: dict[str, list[dict[str, str]]] = {}
        for atom_id, _, q, a in content.faq:
            self._faq.setdefault(atom_id, []).append({"question": q, "answer": a})
        self._sources: dict[str, list[dict[str, Any]]] = {}
        for atom_id, _, src in content.sources:
            self._sources.setdefault(atom_id, []).append(_json(src))
        self._segments: dict[str, list[dict[str, Any]]] = {}
        for interview, sid, start, end, speaker, name, role, text in content.segments:
            row = {"id": sid, "start": start, "end": end, "speaker": speaker, "speaker_name": name, "role": role}
            self._segments.setdefault(interview, []).append(row | {"text": text})
        self._passages = [
            {"atom_id": r[1], "ord": r[2], "kind": r[3], "heading": r[4], "part": r[5], "text": r[6]}
            for r in content.passages
        ]
        self._tokens = [list(r[8] or []) for r in content.passages]
        index = {a: i for i, a in enumerate(self._order)}
        atom_of = np.array([index[p["atom_id"]] for p in self._passages], dtype=np.int64)
        vectors = content.vectors if content.vectors.size else np.zeros((len(atom_of), 0), dtype=np.float32)
        self._core = SearchCore(
            vectors,
            atom_of,
            len(self._order),
            lexical=Lexical(self._tokens),
            atom_fields={k: [self._atoms[a][k] for a in self._order] for k in ("type", "status", "tags")},
            dense_index=dense_index,
        )

    def close(self) -> None:
        """Nothing stays open after loading; kept so callers can release indexes uniformly."""

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading -----------------------------------------------------------------------------
    @property
    def atom_ids(self) -> list[str]:
        return list(self._order)

    @property
    def core(self) -> SearchCore:
        return self._core

    def atom(self, atom_id: str) -> dict[str, Any] | None:
        """The atom's front matter fields at the top level, plus ``body`` (Markdown) and ``faq``."""
        rec = self._atoms.get(atom_id)
        if rec is None:
            return None
        meta = self._meta(rec)
        out = dict(meta)
        out.update(
            id=atom_id,
            meta=dict(meta),
            body=rec["body"],
            faq=self.faq_pairs(atom_id),
            sources=self.sources(atom_id),
            path=rec["path"],
        )
        return out

    @staticmethod
    def _meta(rec: dict[str, Any]) -> dict[str, Any]:
        """The atom's front matter, parsed once (an idempotent cache: two threads store equal values)."""
        meta = rec["meta"]
        if isinstance(meta, str):
            meta = rec["meta"] = _json(meta)
        return meta

    def faq_pairs(self, atom_id: str) -> list[dict[str, str]]:
        return [dict(p) for p in self._faq.get(atom_id, [])]

    def sources(self, atom_id: str) -> list[dict[str, Any]]:
        return [dict(s) for s in self._sources.get(atom_id, [])]

    def faq_questions(self) -> list[tuple[str, str, list[int]]]:
        """(atom id, question, ids of the pair's own FAQ passages) for every FAQ pair, atom order:
        what ``kb eval --holdout`` and the uncertainty calibration hide from search."""
        own: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(self._passages):
            if p["kind"] == "faq":
                own.setdefault((p["atom_id"], str(p["heading"] or "").strip()), []).append(i)
        return [
            (a, pair["question"].strip(), own.get((a, pair["question"].strip()), []))
            for a in self._order
            for pair in self._faq.get(a, [])
            if pair["question"].strip()
        ]

    def passage_tokens(self) -> list[tuple[str, list[str]]]:
        """(atom id, stemmed BM25 tokens) of every passage, in passage-id order: the term statistics
        answering uses to see whether a question's rare terms are covered (``pipeline.answer``)."""
        return [(p["atom_id"], list(t)) for p, t in zip(self._passages, self._tokens, strict=True)]

    def passage_kinds(self) -> list[str]:
        """Each passage's kind (title, section, faq), in passage-id order."""
        return [p["kind"] for p in self._passages]

    def passage_vectors(self) -> np.ndarray:
        """The (passages x dim) unit vectors, passage-id order (read-only)."""
        return self._core.vectors

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Each text as the index tokenises passages (lowercased, stemmed, stopwords dropped)."""
        from pipeline.index.lexical import tokenize

        return tokenize(list(texts)) if texts else []

    def interviews(self) -> list[str]:
        """Interviews with segments in the index (those that citations point to)."""
        return sorted(self._segments)

    def segments(self, interview: str, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """The interview's segments kept in the index, those overlapping ``[start, end]`` when given."""
        rows = self._segments.get(interview, [])
        lo = float("-inf") if start is None else float(start)
        hi = float("inf") if end is None else float(end)
        return [dict(r) for r in rows if r["end"] >= lo and r["start"] <= hi]

    def passages(self, atom_id: str | None = None) -> list[dict[str, Any]]:
        """Passages (with their ``id``), all or one atom's."""
        return [
            {k: v for k, v in p.items() if k != "ord"} | {"id": i}
            for i, p in enumerate(self._passages)
            if atom_id is None or p["atom_id"] == atom_id
        ]

    # search ------------------------------------------------------------------------------
    def _dense(self, query_vector: np.ndarray, mask: np.ndarray | None, depth: int) -> np.ndarray | None:
        """Cosine per passage from the store (-inf where not computed), or None: the core scans its vectors."""
        return None

    def search(
        self,
        query: str,
        k: int = 10,
        filters: dict[str, Any] | None = None,
        *,
        query_vector: np.ndarray | None = None,
        exclude_passages: list[int] | None = None,
    ) -> list[Hit]:
        """The ``k`` best atoms for ``query``: dense + BM25 fused, one hit per atom, best first.

        ``filters``: ``{"type": ..., "status": ..., "tag": ...}``, each a value or a list (any of).
        ``exclude_passages``: passage ids to ignore (``kb eval`` holds out a question's own FAQ pair).
        """
        mask = self._core.passage_mask(filters)
        if exclude_passages:
            mask = np.ones(self._core.size, dtype=bool) if mask is None else mask.copy()
            mask[np.asarray(exclude_passages, dtype=np.int64)] = False
        if query_vector is None and self.embedder is not None and query.strip():
            model = getattr(self.embedder, "model_id", None)
            with telemetry.span(
                f"embeddings {model}", **{"gen_ai.operation.name": "embeddings", "gen_ai.request.model": model}
            ):
                query_vector = self.embedder.encode([query])[0]
        attrs = {"kb.bundle.checksum": self.manifest.checksum, "kb.retrieval.k": k, "kb.index.kind": self.kind}
        with telemetry.span("retrieve", **attrs) as span:
            dense = None
            if query_vector is not None and self._core.size:
                depth = min(self._core.size, max(50, 5 * k))
                dense = self._dense(np.asarray(query_vector, dtype=np.float32), mask, depth)
            vector = None if dense is not None else query_vector
            matches = self._core.search(vector, query, k=k, mask=mask, dense=dense)
            span.set_attribute("kb.retrieval.atom_ids", [self._order[m.atom] for m in matches])
            span.set_attribute("kb.retrieval.scores", [round(float(m.score), 6) for m in matches])
        return [self._hit(rank, m) for rank, m in enumerate(matches, 1)]

    def _hit(self, rank: int, m: Any) -> Hit:
        atom_id = self._order[m.atom]
        rec, p = self._atoms[atom_id], self._passages[m.passage]
        return Hit(
            atom_id=atom_id,
            title=rec["title"],
            type=rec["type"],
            status=rec["status"],
            score=m.score,
            passage={"kind": p["kind"], "heading": p["heading"], "text": p["text"]},
            sources=self.sources(atom_id),
            dense_score=float(m.dense) if np.isfinite(m.dense) else 0.0,
            lexical_score=m.lexical,
            rank=rank,
        )
