"""The Postgres + pgvector twin of the bundle, for teams whose index outgrows one file.

``kb export --to postgresql://…`` copies a bundle into one schema (default ``kb``): the same
atoms, FAQ pairs, sources and passages, the vectors as ``vector(dim)`` under an HNSW index
(cosine) and the passages' stemmed tokens as a ``tsvector`` under GIN, without re-embedding.
Rows are upserted per atom, keyed by the atom id and a hash of everything the atom contributes
(so exporting the same bundle twice changes 0 rows), and atoms gone from the bundle are deleted;
big loads go by COPY with the indexes built after (``pipeline.index.pg_load``).

``PostgresIndex.load(url, embedder)`` is what the service and ``kb eval`` use instead of
``Bundle.load`` (``kb serve --index URL``, ``kb eval --index URL``): both are an
``pipeline.index.reader.IndexReader`` (the same reading methods, filters, BM25 and fusion over the
same tokens); only the dense side differs: it runs in Postgres (HNSW with ``hnsw.iterative_scan``
so filters keep their recall). Transcript segments are rewritten when the bundle changes. The password comes
from the environment only (``PGPASSWORD`` or the URL in ``KB_INDEX_URL``), never from kb.yaml.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.errors import BundleError, ConfigError, MissingDependencyError
from pipeline.index.content import BUNDLE_SCHEMA_VERSION, BundleContent, resolve_embedder
from pipeline.index.reader import IndexReader
from pipeline.models import Manifest
from pipeline.redaction import redact_url

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgres_url(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def _connect(url: str, *, vectors: bool = True) -> Any:
    """A connection (autocommit off); ``vectors``: with pgvector ensured and its types registered (the index
    needs them, the gap log's table does not)."""
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "psycopg", "postgres", "The Postgres index") from None
    try:
        con = psycopg.connect(url, autocommit=False)
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"Cannot connect to Postgres ({redact_url(url)}): {str(exc).strip().splitlines()[0]}",
            "Check the URL (KB_INDEX_URL or --index), that the server runs, and PGPASSWORD.",
        ) from None
    if not vectors:
        return con
    try:
        con.execute("CREATE EXTENSION IF NOT EXISTS vector")
        con.commit()
    except psycopg.Error as exc:
        con.rollback()
        raise ConfigError(
            f"Postgres at {redact_url(url)} has no pgvector extension ({exc.diag.message_primary}).",
            "Install pgvector on the server (CREATE EXTENSION vector needs it), or ask your DBA.",
        ) from None
    register_vector(con)
    return con


def has_password(url: str) -> bool:
    return bool(re.search(r"://[^/@:]+:[^@/]+@", url))  # an empty password (user:@host) is none


def refuse_password_flag(url: str, flag: str = "--index") -> None:
    """A password typed into a flag ends up in shell history and ``ps``: refused, with where it goes."""
    if has_password(url):
        raise ConfigError(
            f"{flag} {redact_url(url)} holds a password; kb takes it only from the environment.",
            f"Drop the password from {flag} and export PGPASSWORD, or put the whole URL in KB_INDEX_URL "
            f"(then omit {flag}).",
        )


def _schema(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise ConfigError(
            f"index schema name {name!r} is not a plain SQL identifier", "Use lowercase letters, digits and _."
        )
    return name


def _ddl(s: str, dim: int) -> list[str]:
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE IF NOT EXISTS {s}.manifest (id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), json jsonb NOT NULL,"
        " checksum text NOT NULL, model text NOT NULL, dim int NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {s}.atoms (id text PRIMARY KEY, version_hash text NOT NULL, type text, status text,"
        " title text, summary text, tags text[], meta jsonb, body text, path text)",
        f"CREATE TABLE IF NOT EXISTS {s}.faq (atom_id text REFERENCES {s}.atoms ON DELETE CASCADE, ord int,"
        " question text, answer text, PRIMARY KEY (atom_id, ord))",
        f"CREATE TABLE IF NOT EXISTS {s}.sources (atom_id text REFERENCES {s}.atoms ON DELETE CASCADE, ord int,"
        " source jsonb, PRIMARY KEY (atom_id, ord))",
        f"CREATE TABLE IF NOT EXISTS {s}.passages (atom_id text REFERENCES {s}.atoms ON DELETE CASCADE, ord int,"
        " kind text, heading text, part int, text text, search_text text, tokens text[], tsv tsvector,"
        f" embedding vector({dim}), PRIMARY KEY (atom_id, ord))",
        f"CREATE TABLE IF NOT EXISTS {s}.segments (interview text, id int, start_s float8, end_s float8, speaker text,"
        " speaker_name text, role text, text text, PRIMARY KEY (interview, id))",
    ]


def upsert_bundle(
    url: str,
    content: BundleContent,
    manifest: Manifest,
    *,
    schema: str = "kb",
    replace: bool = False,
    method: Literal["auto", "copy", "rows"] = "auto",
    rebuild: bool | None = None,
    progress: Any = None,
    say: Any = None,
) -> Any:
    """Copy a bundle's content into Postgres in one transaction (``pipeline.index.pg_load``); an ``UpsertReport``."""
    from pipeline.index.pg_load import write_bundle

    s = _schema(schema)
    con = _connect(url)
    try:
        with con.transaction():
            if replace:
                con.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
            for stmt in _ddl(s, manifest.embedding.dim):
                con.execute(stmt)
            return write_bundle(con, s, content, manifest, method=method, rebuild=rebuild, progress=progress, say=say)
    finally:
        con.close()


def read_manifest(url: str, schema: str = "kb") -> Manifest:
    s = _schema(schema)
    con = _connect(url)
    try:
        try:
            row = con.execute(f"SELECT json FROM {s}.manifest").fetchone()
        except Exception:  # noqa: BLE001 - no schema yet: say how to make one
            row = None
    finally:
        con.close()
    if row is None:
        raise BundleError(
            f"The Postgres database {redact_url(url)} holds no kb index (schema {s}).",
            "Fill it with: kb export --to URL",
        )
    return Manifest.model_validate(row[0])


class PostgresIndex(IndexReader):
    """A kb index in Postgres: the shared reader over its rows, dense search by its HNSW index."""

    kind = "postgres"
    dense_kind = "hnsw (pgvector)"

    def __init__(self, url: str, manifest: Manifest, content: BundleContent, embedder: Any, schema: str) -> None:
        super().__init__(manifest, content, embedder)
        self.url, self.schema = url, schema
        self.path = f"{redact_url(url)}#{schema}"
        self._pid = {(p["atom_id"], p["ord"]): i for i, p in enumerate(self._passages)}
        self._vectors: np.ndarray | None = None
        self._local = threading.local()  # one connection per serving thread, opened on first search
        self._cons: list[Any] = []
        self._cons_lock = threading.Lock()

    def _con(self) -> Any:
        con = getattr(self._local, "con", None)
        if con is None or con.closed:
            con = self._local.con = _connect(self.url)
            with self._cons_lock:
                self._cons.append(con)
        return con

    def close(self) -> None:
        """Close the serving threads' connections (a reload retires this index)."""
        with self._cons_lock:
            cons, self._cons = self._cons, []
        for con in cons:
            with contextlib.suppress(Exception):
                con.close()

    @classmethod
    def load(cls, url: str, embedder: Any, schema: str = "kb") -> PostgresIndex:
        """Read the index's rows (not its vectors) and check ``embedder`` is its model (or a factory of it)."""
        s = _schema(schema)
        manifest = read_manifest(url, s)
        if manifest.bundle_schema_version != BUNDLE_SCHEMA_VERSION:
            raise BundleError(
                f"The Postgres index holds bundle schema {manifest.bundle_schema_version}.",
                "Re-export: kb export --to URL",
            )
        con = _connect(url)
        try:
            content = BundleContent(
                atoms=con.execute(
                    f"SELECT id, type, status, title, summary, tags, meta, body, path FROM {s}.atoms ORDER BY id"
                ).fetchall(),
                faq=con.execute(f"SELECT atom_id, ord, question, answer FROM {s}.faq ORDER BY atom_id, ord").fetchall(),
                sources=con.execute(f"SELECT atom_id, ord, source FROM {s}.sources ORDER BY atom_id, ord").fetchall(),
                passages=[
                    (i, *r)
                    for i, r in enumerate(
                        con.execute(
                            f"SELECT atom_id, ord, kind, heading, part, text, search_text, tokens FROM {s}.passages ORDER BY atom_id, ord"
                        ).fetchall()
                    )
                ],
                segments=con.execute(f"SELECT * FROM {s}.segments ORDER BY interview, id").fetchall(),
            )
        finally:
            con.close()
        embedder = resolve_embedder(manifest, embedder, f"the Postgres index {s}")
        return cls(url, manifest, content, embedder, s)

    def passage_vectors(self) -> np.ndarray:
        """The vectors, read from Postgres once when first asked (calibration at load time)."""
        if self._vectors is None:
            con = _connect(self.url)
            try:
                rows = con.execute(f"SELECT embedding FROM {self.schema}.passages ORDER BY atom_id, ord").fetchall()
            finally:
                con.close()
            dim = self.manifest.embedding.dim
            vecs = [r[0].to_numpy() if hasattr(r[0], "to_numpy") else r[0] for r in rows]  # pgvector's Vector
            self._vectors = np.asarray(vecs, dtype=np.float32).reshape(len(rows), dim)
        return self._vectors

    def _dense(self, query_vector: np.ndarray, mask: np.ndarray | None, depth: int) -> np.ndarray:
        """Cosine per passage for the ``depth`` nearest allowed passages (HNSW), -inf elsewhere."""
        out = np.full(self._core.size, -np.inf, dtype=np.float32)
        where = ""
        params: list[Any] = [query_vector.astype(np.float32)]
        if mask is not None:
            allowed = [f"{self._passages[i]['atom_id']}#{self._passages[i]['ord']}" for i in np.flatnonzero(mask)]
            if not allowed:
                return out
            where = "WHERE (atom_id || '#' || ord) = ANY(%s)"
            params.append(allowed)
        params.append(query_vector.astype(np.float32))
        sql = (
            f"SELECT atom_id, ord, 1 - (embedding <=> %s) FROM {self.schema}.passages {where} "
            f"ORDER BY embedding <=> %s LIMIT {int(depth)}"
        )
        for attempt in (1, 2):  # a dropped connection (server restart) is reopened once
            con = self._con()
            try:
                with con.transaction():
                    con.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(1000, depth * 2))}")
                    con.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    rows = con.execute(sql, params).fetchall()
                break
            except Exception:
                with contextlib.suppress(Exception):
                    con.close()
                self._local.con = None
                if attempt == 2:
                    raise
        for atom_id, ordinal, cos in rows:
            out[self._pid[(atom_id, ordinal)]] = cos
        return out


def load_index(target: str | Path, embedder: Any, schema: str = "kb") -> Any:
    """A Postgres index for a ``postgresql://`` URL, else the bundle file at ``target``."""
    if is_postgres_url(target):
        return PostgresIndex.load(str(target), embedder, schema)
    from pipeline.index.bundle import Bundle

    return Bundle.load(target, embedder)
