"""Writing a bundle into the Postgres index (``kb export --to postgresql://…``), in one transaction.

Each atom's rows carry a hash of everything the atom contributes (``version_hash``): atoms whose
hash is unchanged are left alone (exporting the same bundle twice changes 0 rows), atoms gone
from the bundle are deleted, changed ones are deleted and written again, all set-based.

Two ways to write the new rows, same result (a test holds them equal):
- ``copy`` (big exports): psycopg's COPY (binary for the passages and their vectors, through
  pgvector's dumper) into a temporary staging table, then one ``INSERT … SELECT`` that computes
  the ``tsvector`` in Postgres. When the load is large against the table (an empty index, or at
  least ``REBUILD_FRACTION`` of the passages rewritten) the HNSW and GIN indexes are dropped and
  built once after the load: maintaining an HNSW graph row by row is what made a 100k-passage export
  take over 20 minutes (``bench/scale_bench.py --parts postgres`` measures both).
- ``rows`` (a few edited atoms): plain INSERTs, no staging table.

A rebuild holds the passages table's lock until the transaction commits: servers reading that
index wait for the export (they then reload on the new checksum); an incremental export does not
block them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.errors import BundleError
from pipeline.index.content import BundleContent
from pipeline.models import Manifest

Progress = Callable[[Iterable[Any], str, int], Iterator[Any]]
Method = Literal["auto", "copy", "rows"]
# Rewriting >= this share of the passages: drop the indexes, build after. Measured at 10k passages
# (bench/scale_bench.py --rule): the rebuild was faster already at 5 % and 10 % (x0.68, x0.80) and at 30 %
# (x0.47); 10 %, not lower, because a rebuild makes the servers reading the index wait for the commit.
REBUILD_FRACTION = 0.1
COPY_MIN_PASSAGES = 200  # fewer passages to write: plain INSERTs (no staging table)
BUILD_MEMORY = "1GB"  # maintenance_work_mem for the index build (HNSW builds fast only when its graph fits)
_ATOM_COLS = "id, version_hash, type, status, title, summary, tags, meta, body, path"
_PASSAGE_COLS = "atom_id, ord, kind, heading, part, text, search_text, tokens"
_PASSAGE_TYPES = ["text", "int4", "text", "text", "int4", "text", "text", "text[]", "text", "vector"]


@dataclass
class UpsertReport:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    manifest_changed: bool = False
    method: str = "rows"
    passages_written: int = 0
    indexes_rebuilt: bool = False

    @property
    def rows_changed(self) -> int:
        return self.inserted + self.updated + self.deleted + int(self.manifest_changed)


def _plain(items: Iterable[Any], description: str, total: int) -> Iterator[Any]:
    yield from items


_INDEXES = {
    "passages_embedding_hnsw": "USING hnsw (embedding vector_cosine_ops)",
    "passages_tsv_gin": "USING gin (tsv)",
}


def index_ddl(s: str, names: Iterable[str] = _INDEXES) -> list[str]:
    return [f"CREATE INDEX IF NOT EXISTS {n} ON {s}.passages {_INDEXES[n]}" for n in names]


def missing_indexes(con: Any, s: str) -> list[str]:
    """The passages' indexes absent from schema ``s``: a catalog read, where a no-op ``CREATE INDEX IF NOT
    EXISTS`` would take a SHARE lock on the table (blocking other writers until the export commits)."""
    return [n for n in _INDEXES if con.execute("SELECT to_regclass(%s)", (f"{s}.{n}",)).fetchone()[0] is None]


def atom_row(g: dict[str, Any]) -> tuple[Any, ...]:
    """An atom group's row of ``{s}.atoms``, in ``_ATOM_COLS`` order."""
    a = g["atom"]
    return (a[0], g["hash"], a[1], a[2], a[3], a[4], list(a[5] or []), a[6], a[7], a[8])


def passage_row(r: tuple[Any, ...], vec: np.ndarray) -> tuple[Any, ...]:
    """A bundle passage row and its vector as ``_PASSAGE_COLS``, then the tsvector's source text and the vector."""
    tokens = list(r[8] or [])
    return (r[1], r[2], r[3], r[4], r[5], r[6], r[7], tokens, " ".join(tokens), vec)


def atom_groups(content: BundleContent) -> dict[str, dict[str, Any]]:
    """Everything each atom contributes to the bundle, with a hash that names its version."""
    groups: dict[str, dict[str, Any]] = {
        r[0]: {"atom": r, "faq": [], "sources": [], "passages": []} for r in content.atoms
    }
    for r in content.faq:
        groups[r[0]]["faq"].append(r)
    for r in content.sources:
        groups[r[0]]["sources"].append(r)
    for row, vec in zip(content.passages, content.vectors, strict=True):
        groups[row[1]]["passages"].append((row, np.asarray(vec, dtype="<f4")))
    for g in groups.values():
        h = hashlib.sha256(json.dumps([list(g["atom"]), g["faq"], g["sources"]], ensure_ascii=False).encode())
        for row, vec in g["passages"]:
            h.update(json.dumps(list(row[2:]), ensure_ascii=False).encode())  # not the global passage id
            h.update(vec.tobytes())
        g["hash"] = h.hexdigest()
    return groups


def check_model(con: Any, s: str, manifest: Manifest) -> tuple[str, str, int] | None:
    """The index's (checksum, model, dim), refusing vectors of another model or dimension."""
    row = con.execute(f"SELECT checksum, model, dim FROM {s}.manifest").fetchone()
    dim = manifest.embedding.dim
    if row is not None and (row[1] != manifest.embedding.model or row[2] != dim):
        raise BundleError(
            f"The Postgres index {s} holds vectors of '{row[1]}' (dim {row[2]}); this bundle's are "
            f"'{manifest.embedding.model}' (dim {dim}).",
            "Export a bundle made with the index's model (embed.model), or replace the index: "
            "kb export --to URL --replace (all its rows are rewritten).",
        )
    return row


def write_bundle(
    con: Any,
    s: str,
    content: BundleContent,
    manifest: Manifest,
    *,
    method: Method = "auto",
    rebuild: bool | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
) -> UpsertReport:
    """Upsert ``content`` into schema ``s`` (tables made, model checked) inside the caller's transaction.

    ``rebuild``: drop the HNSW/GIN indexes and build them after a COPY load (None: when the table was
    empty or at least ``REBUILD_FRACTION`` of its passages are rewritten)."""
    progress = progress or _plain
    say = say or (lambda _m: None)
    report = UpsertReport()
    row = check_model(con, s, manifest)
    groups = atom_groups(content)
    have = dict(con.execute(f"SELECT id, version_hash FROM {s}.atoms").fetchall())
    stale = sorted(set(have) - set(groups))
    changed = [a for a, g in groups.items() if have.get(a) != g["hash"]]
    report.deleted = len(stale)
    report.updated = sum(a in have for a in changed)
    report.inserted = len(changed) - report.updated
    report.unchanged = len(groups) - len(changed)
    written = [groups[a] for a in changed]
    report.passages_written = sum(len(g["passages"]) for g in written)
    if stale or report.updated:
        con.execute(f"DELETE FROM {s}.atoms WHERE id = ANY(%s)", (stale + [a for a in changed if a in have],))
    if method == "auto":
        method = "copy" if report.passages_written >= COPY_MIN_PASSAGES else "rows"
    report.method = method
    if method == "copy":
        total = len(content.passages)
        big = not have or report.passages_written >= REBUILD_FRACTION * max(1, total)
        report.indexes_rebuilt = big if rebuild is None else rebuild
        if report.indexes_rebuilt:
            for name in _INDEXES:
                con.execute(f"DROP INDEX IF EXISTS {s}.{name}")
        _copy_atoms(con, s, manifest.embedding.dim, written, progress)
        if report.indexes_rebuilt:
            say(f"export: building the HNSW and GIN indexes over {len(content.passages)} passages")
            con.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
            for stmt in index_ddl(s):
                con.execute(stmt)
    else:
        for g in progress(written, "export: writing atoms", len(written)):
            _insert_atom(con, s, g)
        for stmt in index_ddl(s, missing_indexes(con, s)):  # a first export by rows makes them
            con.execute(stmt)
    if row is None or row[0] != manifest.checksum:
        report.manifest_changed = True
        _write_segments(con, s, content, progress)
        con.execute(
            f"INSERT INTO {s}.manifest (id, json, checksum, model, dim) VALUES (1, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET json = EXCLUDED.json, checksum = EXCLUDED.checksum, "
            "model = EXCLUDED.model, dim = EXCLUDED.dim",
            (manifest.model_dump_json(), manifest.checksum, manifest.embedding.model, manifest.embedding.dim),
        )
    return report


def _write_segments(con: Any, s: str, content: BundleContent, progress: Progress) -> None:
    con.execute(f"DELETE FROM {s}.segments")
    if content.segments:
        with con.cursor().copy(f"COPY {s}.segments FROM STDIN") as cp:
            for r in progress(content.segments, "export: copying transcript segments", len(content.segments)):
                cp.write_row(r)


def _copy_atoms(con: Any, s: str, dim: int, written: list[dict[str, Any]], progress: Progress) -> None:
    """COPY the atoms' rows; passages through a binary staging table (the tsvector is made in Postgres)."""
    cur = con.cursor()
    with cur.copy(f"COPY {s}.atoms ({_ATOM_COLS}) FROM STDIN") as cp:
        for g in written:
            cp.write_row(atom_row(g))
    with cur.copy(f"COPY {s}.faq FROM STDIN") as cp:
        for g in written:
            for r in g["faq"]:
                cp.write_row(r)
    with cur.copy(f"COPY {s}.sources FROM STDIN") as cp:
        for g in written:
            for r in g["sources"]:
                cp.write_row(r)
    cur.execute(
        "CREATE TEMP TABLE kb_stage_passages (atom_id text, ord int, kind text, heading text, part int, text text,"
        f" search_text text, tokens text[], tsv_src text, embedding vector({int(dim)})) ON COMMIT DROP"
    )
    rows = [(r, vec) for g in written for r, vec in g["passages"]]
    with cur.copy("COPY kb_stage_passages FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(_PASSAGE_TYPES)
        for r, vec in progress(rows, "export: copying passages", len(rows)):
            cp.write_row(passage_row(r, vec))
    cur.execute(
        f"INSERT INTO {s}.passages ({_PASSAGE_COLS}, tsv, embedding) "
        f"SELECT {_PASSAGE_COLS}, to_tsvector('simple', tsv_src), embedding FROM kb_stage_passages"
    )
    cur.execute("DROP TABLE kb_stage_passages")


def _insert_atom(con: Any, s: str, g: dict[str, Any]) -> None:
    con.execute(f"INSERT INTO {s}.atoms ({_ATOM_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", atom_row(g))
    with con.cursor() as cur:
        if g["faq"]:
            cur.executemany(f"INSERT INTO {s}.faq VALUES (%s, %s, %s, %s)", g["faq"])
        if g["sources"]:
            cur.executemany(f"INSERT INTO {s}.sources VALUES (%s, %s, %s)", g["sources"])
        rows = [passage_row(r, vec) for r, vec in g["passages"]]
        if rows:
            cur.executemany(
                f"INSERT INTO {s}.passages ({_PASSAGE_COLS}, tsv, embedding) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, to_tsvector('simple', %s), %s)",
                rows,
            )
