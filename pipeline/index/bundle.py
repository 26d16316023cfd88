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
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BundleError
from pipeline.index.ann import AUTO_THRESHOLD, AnnParams, dense_index
from pipeline.index.content import (
    BUNDLE_SCHEMA_VERSION,
    COLUMNS,
    ORDER,
    TABLES,
    BundleContent,
    check_embedder,
    checksum,
    resolve_embedder,
)
from pipeline.index.reader import IndexReader
from pipeline.models import EmbeddingInfo, Manifest
from pipeline.workspace import temp_dir

__all__ = [
    "BUNDLE_SCHEMA_VERSION",
    "TABLES",
    "Bundle",
    "BundleContent",
    "check_embedder",
    "checksum",
    "manifest_for",
    "newest_bundle",
    "read_bundle",
    "read_manifest",
    "write_bundle",
]
_COLUMNS, _ORDER = COLUMNS, ORDER


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
            if name == "passages":
                content.passages, content.token_json = _read_passages(con, cols)
                continue
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


def _read_passages(con, cols: list[tuple[str, str]]) -> tuple[list[tuple], list[str]]:
    """Passage rows, and each row's tokens as the JSON text the checksum hashes.

    DuckDB renders the token lists as JSON (``to_json``), which Python splits: turning 10M list
    items into Python objects one by one was most of a 100k-passage load. Equal token strings
    share one object (``canon``): a 1M-passage bundle holds ~100M tokens but ~100k distinct ones.
    A list whose JSON has an escape or a null is read with ``json.loads`` (exact, rare).
    """
    names = ", ".join(c for c, _ in cols[:-1])
    rows = con.execute(f"SELECT {names}, to_json(tokens)::VARCHAR FROM passages ORDER BY id").fetchall()
    canon: dict[str, str] = {}
    intern = canon.setdefault
    out, texts = [], []
    for *head, tj in rows:
        if tj is None:
            tokens, tj = None, "null"
        elif "\\" in tj or "null" in tj or not (tj.startswith('["') and tj.endswith('"]')):
            tokens = json.loads(tj)
            tj = json.dumps(tokens, ensure_ascii=False, separators=(",", ":"))
        else:
            tokens = [intern(t, t) for t in tj[2:-2].split('","')]
        out.append((*head, tokens))
        texts.append(tj)
    return out, texts


class Bundle(IndexReader):
    """A loaded, validated bundle file: everything in memory (``IndexReader``), dense by numpy or ANN.

    Thread-safe for concurrent reads (nothing mutates after ``load``). ``embedder`` embeds
    queries; it must be the model the bundle was exported with.
    """

    kind = "bundle"

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
        dense_idx = dense_index(
            content.vectors,
            dense,
            ann or AnnParams(),
            bundle=self.path,
            bundle_checksum=manifest.checksum,
            threshold=dense_threshold,
        )
        self.dense_kind = dense_idx.kind
        super().__init__(manifest, content, embedder, dense_index=dense_idx)

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
        embedder = resolve_embedder(manifest, embedder, path)
        return cls(path, manifest, content, embedder, dense=dense, ann=ann, dense_threshold=dense_threshold)


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
    found: list[tuple[float, Path]] = []
    for p in folder.glob("kb-*.duckdb") if folder.is_dir() else []:
        try:
            found.append((p.stat().st_mtime, p))
        except FileNotFoundError:  # removed since the listing (a prune, a concurrent swap)
            continue
    return max(found)[1] if found else None


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
