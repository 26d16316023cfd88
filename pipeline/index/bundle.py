"""The bundle: one DuckDB file with atoms, FAQ pairs, sources, passages, vectors and a manifest.

Tables (schema version 2; any SQL client can read them):

- ``manifest(json)``: one row, the ``Manifest`` (also written beside the file as JSON);
- ``atoms(id, type, status, title, summary, tags, meta, body, path)``: ``meta`` is the front
  matter as JSON, ``body`` the Markdown;
- ``faq(atom_id, ord, question, answer)``, ``sources(atom_id, ord, source)`` (JSON as in the
  front matter);
- ``passages(id, atom_id, ord, kind, heading, part, text, search_text, tokens, embedding)``:
  ``embedding`` is ``FLOAT[dim]`` (unit length: ``array_inner_product`` is the cosine),
  ``tokens`` the stemmed BM25 tokens of ``search_text``;
- ``segments(interview, id, start_s, end_s, speaker, speaker_name, role, text)`` (schema 2): the
  transcript segments that interview citations point to (plus one segment of context on either
  side), so a citation's excerpt can be shown from the bundle alone (``get_source``).

``Bundle.load`` reads everything into memory once and closes the file, so searches are pure
numpy (thread-safe, no file handle per thread) and the file can be replaced while serving.
The checksum covers every row in a fixed order and the vectors' bytes: a changed row is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import telemetry
from pipeline.errors import BundleError
from pipeline.index.ann import AUTO_THRESHOLD, AnnParams, dense_index
from pipeline.index.lexical import TOKENIZER, Lexical
from pipeline.index.search import Hit, SearchCore
from pipeline.models import EmbeddingInfo, Manifest
from pipeline.workspace import temp_dir

BUNDLE_SCHEMA_VERSION = 2
TABLES = ("atoms", "faq", "sources", "passages", "segments")

_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "atoms": [
        ("id", "VARCHAR"),
        ("type", "VARCHAR"),
        ("status", "VARCHAR"),
        ("title", "VARCHAR"),
        ("summary", "VARCHAR"),
        ("tags", "VARCHAR[]"),
        ("meta", "VARCHAR"),
        ("body", "VARCHAR"),
        ("path", "VARCHAR"),
    ],
    "faq": [("atom_id", "VARCHAR"), ("ord", "INTEGER"), ("question", "VARCHAR"), ("answer", "VARCHAR")],
    "sources": [("atom_id", "VARCHAR"), ("ord", "INTEGER"), ("source", "VARCHAR")],
    "passages": [
        ("id", "INTEGER"),
        ("atom_id", "VARCHAR"),
        ("ord", "INTEGER"),
        ("kind", "VARCHAR"),
        ("heading", "VARCHAR"),
        ("part", "INTEGER"),
        ("text", "VARCHAR"),
        ("search_text", "VARCHAR"),
        ("tokens", "VARCHAR[]"),
    ],
    "segments": [
        ("interview", "VARCHAR"),
        ("id", "INTEGER"),
        ("start_s", "DOUBLE"),
        ("end_s", "DOUBLE"),
        ("speaker", "VARCHAR"),
        ("speaker_name", "VARCHAR"),
        ("role", "VARCHAR"),
        ("text", "VARCHAR"),
    ],
}
_ORDER = {
    "atoms": "id",
    "faq": "atom_id, ord",
    "sources": "atom_id, ord",
    "passages": "id",
    "segments": "interview, id",
}


@dataclass
class BundleContent:
    """Rows of every table (in their fixed order) and the passage vectors, as written and read."""

    atoms: list[tuple] = field(default_factory=list)
    faq: list[tuple] = field(default_factory=list)
    sources: list[tuple] = field(default_factory=list)
    passages: list[tuple] = field(default_factory=list)
    segments: list[tuple] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def sort(self) -> None:
        self.atoms.sort(key=lambda r: r[0])
        self.faq.sort(key=lambda r: (r[0], r[1]))
        self.sources.sort(key=lambda r: (r[0], r[1]))
        self.segments.sort(key=lambda r: (r[0], r[1]))

    def counts(self) -> dict[str, int]:
        names = ("atoms", "faq", "sources", "passages", "segments")
        return {name: len(getattr(self, name)) for name in names}


def checksum(content: BundleContent, embedding: EmbeddingInfo, schema_version: int = BUNDLE_SCHEMA_VERSION) -> str:
    """sha256 over the schema version, the embedding model, every row in order, and the vectors."""
    h = hashlib.sha256()
    head = {"schema": schema_version, "embedding": embedding.model_dump(mode="json"), "tokenizer": TOKENIZER}
    h.update(json.dumps(head, sort_keys=True).encode())
    for name in TABLES:
        h.update(f"\n#{name}\n".encode())
        for row in getattr(content, name):
            h.update(json.dumps(list(row), ensure_ascii=False, separators=(",", ":")).encode())
            h.update(b"\n")
    h.update(b"\n#vectors\n")
    h.update(np.ascontiguousarray(content.vectors, dtype="<f4").tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# writing


def write_bundle(path: Path, content: BundleContent, manifest: Manifest) -> None:
    """Write ``content`` and ``manifest`` to a new DuckDB file at ``path`` (which must not exist).

    The caller makes it atomic (``workspace.atomic_path``). Vectors go in through one columnar
    numpy scan (not row by row); the file is re-read and its checksum verified before returning.
    """
    import duckdb

    path = Path(path)
    dim = manifest.embedding.dim
    vectors = np.ascontiguousarray(content.vectors, dtype=np.float32)
    if vectors.shape != (len(content.passages), dim):
        raise BundleError(f"{len(content.passages)} passages but vectors of shape {vectors.shape} (dim {dim}).")
    con = duckdb.connect(str(path))
    try:
        con.execute("SET threads=1")  # keeps the scan order of the vector insert deterministic
        for name, cols in _COLUMNS.items():
            extra = f", embedding FLOAT[{dim}]" if name == "passages" else ""
            con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in cols)}{extra})")
        con.execute("CREATE TABLE manifest (json VARCHAR)")
        with temp_dir(path.parent) as tmp:  # beside the bundle: no atom text in the system temp folder
            for name in ("atoms", "faq", "sources", "segments"):
                _insert_json(con, name, name, _COLUMNS[name], getattr(content, name), Path(tmp))
            _insert_json(con, "passages_rows", None, _COLUMNS["passages"], content.passages, Path(tmp))
        vectors_table(con, "passage_vectors", vectors)
        con.execute(
            "INSERT INTO passages SELECT r.*, v.e FROM passages_rows r JOIN passage_vectors v ON r.id = v.id ORDER BY r.id"
        )
        con.execute("DROP TABLE passages_rows")
        con.execute("DROP TABLE passage_vectors")
        con.execute("INSERT INTO manifest VALUES (?)", [manifest.model_dump_json()])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    found = _read_content(path)
    if checksum(found, manifest.embedding, manifest.bundle_schema_version) != manifest.checksum:
        raise BundleError(
            f"The bundle written to {path} does not read back identically.", "This is a bug in kb export."
        )


def _insert_json(
    con, table: str, create: str | None, cols: list[tuple[str, str]], rows: Sequence[tuple], tmp: Path
) -> None:
    """Bulk insert via newline-delimited JSON (DuckDB's reader is columnar and fast)."""
    names = [c for c, _ in cols]
    f = tmp / f"{table}.jsonl"
    with open(f, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False))
            fh.write("\n")
    spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in cols) + "}"
    select = f"SELECT {', '.join(names)} FROM read_json(?, format='newline_delimited', columns={spec})"
    if create is None:
        con.execute(f"CREATE TEMP TABLE {table} AS {select}", [str(f)])
    elif rows:
        con.execute(f"INSERT INTO {table} {select}", [str(f)])


def vectors_table(con, name: str, vectors: np.ndarray) -> None:
    """A temp table ``name(id, e FLOAT[dim])`` from a float32 matrix, through one flat numpy scan."""
    n, dim = vectors.shape
    con.execute(f"CREATE TEMP TABLE {name} (id INTEGER, e FLOAT[{dim}])")
    if n == 0:
        return
    flat = vectors.ravel()  # noqa: F841  (read by DuckDB's replacement scan below)
    con.execute(
        f"INSERT INTO {name} SELECT (i // {dim})::INTEGER AS id, list(v ORDER BY i)::FLOAT[{dim}] "
        f"FROM (SELECT row_number() OVER () - 1 AS i, column0 AS v FROM flat) GROUP BY id"
    )


def _fetch_vectors(con, sql: str, params: list | None = None, dim: int = 0) -> np.ndarray:
    col = con.execute(sql, params or []).fetchnumpy()
    values = next(iter(col.values())) if col else []
    if len(values) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.stack(list(values)), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# reading


def _connect_read_only(path: Path):
    import duckdb

    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise BundleError(
            f"{path} is not a readable kb bundle ({str(exc).splitlines()[0]}).",
            "Point --bundle at a file written by 'kb export' (dist/kb-*.duckdb).",
        ) from None


def _read_manifest(con, path: Path) -> Manifest:
    import duckdb

    try:
        row = con.execute("SELECT json FROM manifest").fetchall()
    except duckdb.Error:
        row = []
    if len(row) != 1:
        raise BundleError(
            f"{path} has no bundle manifest; it was not written by 'kb export'.", "Re-export it with 'kb export'."
        )
    try:
        return Manifest.model_validate_json(row[0][0])
    except ValueError as exc:
        raise BundleError(
            f"{path}: the bundle manifest is invalid ({exc}).", "Re-export it with 'kb export'."
        ) from None


def _read_content(path: Path, con=None) -> BundleContent:
    own = con is None
    con = con or _connect_read_only(path)
    try:
        content = BundleContent()
        for name, cols in _COLUMNS.items():
            names = ", ".join(c for c, _ in cols)
            setattr(
                content,
                name,
                [tuple(r) for r in con.execute(f"SELECT {names} FROM {name} ORDER BY {_ORDER[name]}").fetchall()],
            )
        dim = con.execute("SELECT array_length(embedding) FROM passages LIMIT 1").fetchall()
        content.vectors = _fetch_vectors(con, "SELECT embedding FROM passages ORDER BY id", dim=dim[0][0] if dim else 0)
        return content
    finally:
        if own:
            con.close()


class Bundle:
    """A loaded, validated bundle: hybrid search, atoms and FAQ pairs, all in memory.

    Thread-safe for concurrent reads (nothing mutates after ``load``). ``embedder`` embeds
    queries; it must be the model the bundle was exported with.
    """

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        content: BundleContent,
        embedder: Any | None,
        *,
        dense: str = "exact",
        ann: Any | None = None,
        dense_threshold: int = AUTO_THRESHOLD,
    ):
        self.path = Path(path)
        self.manifest = manifest
        self.embedder = embedder
        self._atoms: dict[str, dict[str, Any]] = {}
        self._faq: dict[str, list[dict[str, str]]] = {}
        self._sources: dict[str, list[dict[str, Any]]] = {}
        for atom_id, _, q, a in content.faq:
            self._faq.setdefault(atom_id, []).append({"question": q, "answer": a})
        for atom_id, _, src in content.sources:
            self._sources.setdefault(atom_id, []).append(json.loads(src))
        self._order: list[str] = []
        for atom_id, atype, status, title, summary, tags, meta, body, apath in content.atoms:
            self._order.append(atom_id)
            self._atoms[atom_id] = {
                "id": atom_id,
                "type": atype,
                "status": status,
                "title": title,
                "summary": summary,
                "tags": list(tags or []),
                "meta": json.loads(meta),
                "body": body,
                "path": apath,
            }
        self._segments: dict[str, list[dict[str, Any]]] = {}
        for interview, sid, start, end, speaker, name, role, text in content.segments:
            self._segments.setdefault(interview, []).append(
                {
                    "id": sid,
                    "start": start,
                    "end": end,
                    "speaker": speaker,
                    "speaker_name": name,
                    "role": role,
                    "text": text,
                }
            )
        index = {a: i for i, a in enumerate(self._order)}
        self._passages = [
            {"atom_id": r[1], "kind": r[3], "heading": r[4], "part": r[5], "text": r[6]} for r in content.passages
        ]
        atom_of = np.array([index[r[1]] for r in content.passages], dtype=np.int64)
        self._tokens = [list(r[8] or []) for r in content.passages]
        lexical = Lexical(self._tokens)
        dense_idx = dense_index(
            content.vectors,
            dense,
            ann or AnnParams(),
            bundle=self.path,
            bundle_checksum=manifest.checksum,
            threshold=dense_threshold,
        )
        self.dense_kind = dense_idx.kind
        self._core = SearchCore(
            content.vectors,
            atom_of,
            len(self._order),
            lexical=lexical,
            atom_fields={
                "type": [self._atoms[a]["type"] for a in self._order],
                "status": [self._atoms[a]["status"] for a in self._order],
                "tags": [self._atoms[a]["tags"] for a in self._order],
            },
            dense_index=dense_idx,
        )

    # loading -----------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: Path | str,
        embedder: Any,
        *,
        dense: str = "exact",
        ann: Any | None = None,
        dense_threshold: int = AUTO_THRESHOLD,
    ) -> Bundle:
        """Open and validate ``path``: schema version, checksum, and that ``embedder`` is its model.

        ``embedder`` is an embedder, or a factory called with the manifest once it is validated
        (``functools.partial(pipeline.backends.embed.embedder_for_manifest, settings=...)``), so a
        caller can load the model the bundle names. ``dense``: ``serve.dense`` (exact, auto, hnsw,
        int8) with ``ann`` its ``pipeline.index.ann.AnnParams``. Raises ``BundleError`` with the fix.
        """
        path = Path(path)
        if not path.is_file():
            raise BundleError(
                f"Bundle {path} does not exist.", "Write one with 'kb export' (default: dist/kb-<version>.duckdb)."
            )
        con = _connect_read_only(path)
        try:
            manifest = _read_manifest(con, path)
            if manifest.bundle_schema_version != BUNDLE_SCHEMA_VERSION:
                raise BundleError(
                    f"{path} uses bundle schema {manifest.bundle_schema_version}; this kb reads schema {BUNDLE_SCHEMA_VERSION}.",
                    "Re-export the bundle with this version of kb ('kb export'), or serve it with the kb that wrote it.",
                )
            content = _read_content(path, con)
        finally:
            con.close()
        found = checksum(content, manifest.embedding, manifest.bundle_schema_version)
        if found != manifest.checksum:
            raise BundleError(
                f"{path} fails its checksum: its content was changed after export (expected {manifest.checksum[:12]}, "
                f"found {found[:12]}).",
                "Do not edit bundles; edit the atoms and run 'kb export' again.",
            )
        if not hasattr(embedder, "encode") and callable(embedder):
            embedder = embedder(manifest)
        check_embedder(manifest, embedder, path)
        return cls(path, manifest, content, embedder, dense=dense, ann=ann, dense_threshold=dense_threshold)

    def close(self) -> None:
        """Nothing stays open after ``load``; kept so callers can release bundles uniformly."""

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading -----------------------------------------------------------------------------
    @property
    def atom_ids(self) -> list[str]:
        return list(self._order)

    def atom(self, atom_id: str) -> dict[str, Any] | None:
        """The atom's front matter fields at the top level, plus ``body`` (Markdown) and ``faq``."""
        rec = self._atoms.get(atom_id)
        if rec is None:
            return None
        out = dict(rec["meta"])
        out.update(
            id=atom_id,
            meta=dict(rec["meta"]),
            body=rec["body"],
            faq=[dict(p) for p in self._faq.get(atom_id, [])],
            sources=[dict(s) for s in self._sources.get(atom_id, [])],
            path=rec["path"],
        )
        return out

    def faq_pairs(self, atom_id: str) -> list[dict[str, str]]:
        return [dict(p) for p in self._faq.get(atom_id, [])]

    def faq_questions(self) -> list[tuple[str, str, list[int]]]:
        """(atom id, question, ids of the pair's own FAQ passages) for every FAQ pair, atom order:
        what ``kb eval --holdout`` and the uncertainty calibration hide from search."""
        own: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(self._passages):
            if p["kind"] == "faq":
                own.setdefault((p["atom_id"], str(p["heading"] or "").strip()), []).append(i)
        out: list[tuple[str, str, list[int]]] = []
        for atom_id in self._order:
            for pair in self._faq.get(atom_id, []):
                q = pair["question"].strip()
                if q:
                    out.append((atom_id, q, own.get((atom_id, q), [])))
        return out

    def sources(self, atom_id: str) -> list[dict[str, Any]]:
        return [dict(s) for s in self._sources.get(atom_id, [])]

    def passage_tokens(self) -> list[tuple[str, list[str]]]:
        """(atom id, stemmed BM25 tokens) of every passage, in passage-id order: the term statistics
        answering uses to see whether a question's rare terms are covered (``pipeline.answer``)."""
        return [(p["atom_id"], list(t)) for p, t in zip(self._passages, self._tokens, strict=True)]

    def passage_vectors(self) -> np.ndarray:
        """The (passages x dim) unit vectors, passage-id order (read-only)."""
        return self._core.vectors

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Each text as the index tokenises passages (lowercased, stemmed, stopwords dropped)."""
        from pipeline.index.lexical import tokenize

        return tokenize(list(texts)) if texts else []

    def interviews(self) -> list[str]:
        """Interviews with segments in the bundle (those that citations point to)."""
        return sorted(self._segments)

    def segments(self, interview: str, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """The interview's segments kept in the bundle, those overlapping ``[start, end]`` when given."""
        rows = self._segments.get(interview, [])
        lo = float("-inf") if start is None else float(start)
        hi = float("inf") if end is None else float(end)
        return [dict(r) for r in rows if r["end"] >= lo and r["start"] <= hi]

    def passages(self, atom_id: str | None = None) -> list[dict[str, Any]]:
        """Passages (with their ``id``), all or one atom's."""
        return [dict(p, id=i) for i, p in enumerate(self._passages) if atom_id is None or p["atom_id"] == atom_id]

    # search ------------------------------------------------------------------------------
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
        with telemetry.span("retrieve", **{"kb.bundle.checksum": self.manifest.checksum, "kb.retrieval.k": k}) as span:
            matches = self._core.search(query_vector, query, k=k, mask=mask)
            span.set_attribute("kb.retrieval.atom_ids", [self._order[m.atom] for m in matches])
            span.set_attribute("kb.retrieval.scores", [round(float(m.score), 6) for m in matches])
        hits = []
        for rank, m in enumerate(matches, 1):
            atom_id = self._order[m.atom]
            rec = self._atoms[atom_id]
            p = self._passages[m.passage]
            hits.append(
                Hit(
                    atom_id=atom_id,
                    title=rec["title"],
                    type=rec["type"],
                    status=rec["status"],
                    score=m.score,
                    passage={"kind": p["kind"], "heading": p["heading"], "text": p["text"]},
                    sources=self.sources(atom_id),
                    dense_score=m.dense,
                    lexical_score=m.lexical,
                    rank=rank,
                )
            )
        return hits

    @property
    def core(self) -> SearchCore:
        return self._core


def check_embedder(manifest: Manifest, embedder: Any, path: Path | str = "bundle") -> None:
    model = getattr(embedder, "model_id", None)
    dim = getattr(embedder, "dim", None)
    if model != manifest.embedding.model or dim != manifest.embedding.dim:
        raise BundleError(
            f"{path} was embedded with '{manifest.embedding.model}' (dim {manifest.embedding.dim}), "
            f"but the embedder in use is '{model}' (dim {dim}).",
            f"Set embed.model to '{manifest.embedding.model}' (kb.yaml or KB_EMBED_MODEL), or re-export the "
            "bundle with the current embed.model.",
        )


def manifest_for(
    content: BundleContent,
    embedding: EmbeddingInfo,
    *,
    kb_version: str,
    statuses: Iterable[str],
    git_commit: str | None = None,
    created: dt.datetime | None = None,
) -> Manifest:
    return Manifest(
        bundle_schema_version=BUNDLE_SCHEMA_VERSION,
        kb_version=kb_version,
        created=created or dt.datetime.now(dt.UTC).replace(microsecond=0),
        git_commit=git_commit,
        embedding=embedding,
        counts=content.counts(),
        statuses=list(statuses),
        checksum=checksum(content, embedding),
    )


def read_manifest(path: Path | str) -> Manifest:
    """The manifest of a bundle file, without loading or validating its content."""
    con = _connect_read_only(Path(path))
    try:
        return _read_manifest(con, Path(path))
    finally:
        con.close()


def newest_bundle(folder: Path) -> Path | None:
    """The most recently written ``kb-*.duckdb`` in ``folder`` (``kb export``'s names), or None."""
    found = sorted(folder.glob("kb-*.duckdb"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return found[-1] if found else None


def read_bundle(path: Path | str) -> tuple[Manifest, BundleContent]:
    """A bundle file's manifest and rows (vectors included), checksum verified; for copying it elsewhere."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"Bundle {path} does not exist.", "Write one with 'kb export'.")
    con = _connect_read_only(path)
    try:
        manifest = _read_manifest(con, path)
        content = _read_content(path, con)
    finally:
        con.close()
    if checksum(content, manifest.embedding, manifest.bundle_schema_version) != manifest.checksum:
        raise BundleError(f"{path} fails its checksum.", "Do not edit bundles; run 'kb export' again.")
    return manifest, content
