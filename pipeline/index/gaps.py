"""The gap log: what users asked that the knowledge base could not answer (``.kb/gaps.duckdb``).

Three kinds of gap, one table: ``question`` (``kb serve`` answered it ``uncertain``),
``uncovered-error`` (``kb triage`` found an error no atom covers) and ``asked-draft`` (users
were answered from an atom still in draft). No user identity is ever stored: only the redacted
text, when, how often, and the retrieval evidence. The table is bounded (``gaps.max_rows``):
past it, closed gaps go first, then the least recently seen. A gap is closed by
``close`` when the same question, asked again against a newer bundle, is answered certain.
When kb serves from Postgres the same table lives in the index's schema (``gaps_pg``; chosen by
``gapstore.open_gap_log``).
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import hashlib
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConflictError
from pipeline.index.duck import connect
from pipeline.redaction import apply

KINDS = ("question", "uncovered-error", "asked-draft")
MAX_TEXT = 2000
LOCK_WAIT_S = 10.0  # longest a write waits for another process's lock on the file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gaps (
  key VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, text VARCHAR NOT NULL, atom_id VARCHAR,
  evidence DOUBLE, count INTEGER NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
  status VARCHAR NOT NULL, closed_at TIMESTAMP, closed_by VARCHAR, detail VARCHAR
)
"""


class GapSQL:
    """The statements both stores run, for ``table`` and the driver's placeholder (DuckDB ``?``, psycopg ``%s``)."""

    def __init__(self, table: str, p: str) -> None:
        self.upsert = (
            f"INSERT INTO {table} VALUES ({', '.join([p] * 12)}) ON CONFLICT (key) DO UPDATE SET "
            "count = gaps.count + excluded.count, last_seen = excluded.last_seen, "
            "evidence = coalesce(excluded.evidence, gaps.evidence), detail = coalesce(excluded.detail, gaps.detail), "
            "status = 'open', closed_at = NULL, closed_by = NULL"
        )
        self.count = f"SELECT count(*) FROM {table}"
        # past the bound: closed gaps first, then the least recently seen
        self.trim = f"DELETE FROM {table} WHERE key IN (SELECT key FROM {table} ORDER BY (status = 'open'), last_seen LIMIT {p})"
        self._select = f"SELECT * FROM {table}"
        self._status = f" WHERE status = {p}"
        self.close = f"UPDATE {table} SET status = 'closed', closed_at = {p}, closed_by = {p} WHERE key = {p}"

    def select(self, status: str | None) -> tuple[str, list[str]]:
        sql = self._select + (self._status if status else "") + " ORDER BY count DESC, last_seen DESC, key"
        return sql, [status] if status else []


DUCK_SQL = GapSQL("gaps", "?")


def redact(text: str) -> str:
    """``text`` without secrets, e-mail and IP addresses: the ops chat's rules (``pipeline.redaction``), bounded
    to ``MAX_TEXT`` characters."""
    return apply(" ".join(str(text).split())[:MAX_TEXT])[0]


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def gap_key(kind: str, text: str, atom_id: str | None = None) -> str:
    return hashlib.sha256(f"{kind}\x1f{_norm(text)}\x1f{atom_id or ''}".encode()).hexdigest()[:32]


def gap_rows(entries: Iterable[dict[str, Any]], now: dt.datetime | None = None) -> list[tuple[Any, ...]]:
    """The table rows for ``entries`` (both stores): validated kinds, redacted texts, the gap keys."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows: list[tuple[Any, ...]] = []
    for e in entries:
        kind = str(e.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"unknown gap kind {kind!r}; kinds: {', '.join(KINDS)}")
        text = redact(str(e.get("text") or ""))
        if not text.strip():
            continue
        atom = e.get("atom_id")
        detail = redact(str(e["detail"])) if e.get("detail") else None
        evidence = e.get("evidence")
        rows.append(
            (
                gap_key(kind, text, atom),
                kind,
                text,
                atom,
                None if evidence is None else float(evidence),
                int(e.get("count") or 1),
                now,
                now,
                "open",
                None,
                None,
                detail,
            )
        )
    return rows


@dataclass
class Gap:
    key: str
    kind: str
    text: str
    atom_id: str | None
    evidence: float | None
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    status: str
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    detail: str | None = None


class GapTable(abc.ABC):
    """``record``, ``all`` and ``close`` over the gap table, for both stores: each gives its dialect's statements
    (``sql``) and a session (``_session``); the calls of one process are serialised by a lock."""

    def __init__(self, sql: GapSQL, max_rows: int) -> None:
        self.sql = sql
        self.max_rows = max(1, int(max_rows))
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _session(self) -> contextlib.AbstractContextManager[Any]:
        """One call's handle with DB-API ``execute``/``executemany`` (``execute`` returning something to fetch
        from), its work committed and the connection closed on exit."""

    def _missing(self) -> bool:
        """No table to read yet (``all`` then says so with [] rather than making one)."""
        return False

    def record(self, entries: Iterable[dict[str, Any]], *, now: dt.datetime | None = None) -> int:
        """Add or count up gaps: each entry has ``kind``, ``text`` and optionally ``atom_id``, ``evidence``,
        ``count`` and ``detail``. Texts are redacted here, whoever calls. Returns how many entries were kept."""
        rows = gap_rows(entries, now)
        if not rows:
            return 0
        with self._lock, self._session() as db:
            db.executemany(self.sql.upsert, rows)
            n = db.execute(self.sql.count).fetchone()[0]
            if n > self.max_rows:
                db.execute(self.sql.trim, [n - self.max_rows])
        return len(rows)

    def all(self, status: str | None = None) -> list[Gap]:
        if self._missing():
            return []
        sql, params = self.sql.select(status)
        with self._lock, self._session() as db:
            rows = db.execute(sql, params).fetchall()
        return [Gap(*r) for r in rows]

    def close(self, keys: Iterable[str], closed_by: str, *, now: dt.datetime | None = None) -> int:
        keys = list(keys)
        if not keys:
            return 0
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self._lock, self._session() as db:
            db.executemany(self.sql.close, [(now, closed_by, k) for k in keys])
        return len(keys)


class GapLog(GapTable):
    """The gap table in one DuckDB file, opened per call (``kb gaps`` may read while ``kb serve`` runs)."""

    def __init__(self, path: Path | str, max_rows: int = 5000) -> None:
        super().__init__(DUCK_SQL, max_rows)
        self.path = Path(path)

    def _connect(self) -> Any:
        """A connection, waiting out another process's lock (``kb serve --workers N`` share one file): each
        holds it for one short statement, so a bounded retry with jitter loses no record."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                con = connect(
                    self.path,
                    in_use=f"the gap log {self.path} is in use by another kb process",
                    hint="Try again in a moment (kb serve writes to it briefly per uncertain answer).",
                )
                break
            except ConflictError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(random.uniform(0.005, 0.05))
        try:
            con.execute(_SCHEMA)
        except Exception:
            con.close()
            raise
        return con

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        con = self._connect()
        try:
            yield con  # DuckDB commits each statement
        finally:
            con.close()

    def _missing(self) -> bool:
        return not self.path.is_file()


def default_path(state_dir: Path) -> Path:
    return Path(state_dir) / "gaps.duckdb"
