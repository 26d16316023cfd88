"""The gap log: what users asked that the knowledge base could not answer (``.kb/gaps.duckdb``).

Three kinds of gap, one table: ``question`` (``kb serve`` answered it ``uncertain``),
``uncovered-error`` (``kb triage`` found an error no atom covers) and ``asked-draft`` (users
were answered from an atom still in draft). No user identity is ever stored: only the redacted
text, when, how often, and the retrieval evidence. The table is bounded (``gaps.max_rows``):
past it, closed gaps go first, then the least recently seen. A gap is closed by
``close`` when the same question, asked again against a newer bundle, is answered certain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.index.duck import connect

KINDS = ("question", "uncovered-error", "asked-draft")
MAX_TEXT = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gaps (
  key VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, text VARCHAR NOT NULL, atom_id VARCHAR,
  evidence DOUBLE, count INTEGER NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
  status VARCHAR NOT NULL, closed_at TIMESTAMP, closed_by VARCHAR, detail VARCHAR
)
"""

# Redaction: what must never be kept from a user's question or a log line (secrets and people).
_REDACT = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 <redacted>"),
    (
        re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)\b(\s*[:=]\s*)\S+"),
        r"\1\2<redacted>",
    ),
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@"), "<scheme>://<redacted>@"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "<email>"),
    (re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"), "<ip>"),
    (
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9-]{16,}|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,})\b"
        ),
        "<redacted>",
    ),
    (re.compile(r"\b[A-Za-z0-9+/_-]{32,}={0,2}(?![\w])"), "<redacted>"),
]


def redact(text: str) -> str:
    """``text`` without secrets, e-mail addresses and IP addresses (bounded to ``MAX_TEXT`` characters)."""
    out = " ".join(str(text).split())[:MAX_TEXT]
    for pattern, repl in _REDACT:
        out = pattern.sub(repl, out)
    return out


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def gap_key(kind: str, text: str, atom_id: str | None = None) -> str:
    return hashlib.sha256(f"{kind}\x1f{_norm(text)}\x1f{atom_id or ''}".encode()).hexdigest()[:32]


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


class GapLog:
    """The gap table in one DuckDB file, opened per call (``kb gaps`` may read while ``kb serve`` runs)."""

    def __init__(self, path: Path | str, max_rows: int = 5000) -> None:
        self.path = Path(path)
        self.max_rows = max(1, int(max_rows))
        self._lock = threading.Lock()

    def _connect(self, read_only: bool = False) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = connect(
            self.path,
            in_use=f"the gap log {self.path} is in use by another kb process",
            hint="Try again in a moment (kb serve writes to it briefly per uncertain answer).",
        )
        con.execute(_SCHEMA)
        return con

    def record(self, entries: Iterable[dict[str, Any]], *, now: dt.datetime | None = None) -> int:
        """Add or count up gaps: each entry has ``kind``, ``text`` and optionally ``atom_id``, ``evidence``,
        ``count`` and ``detail``. Texts are redacted here, whoever calls. Returns how many entries were kept."""
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = []
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
        if not rows:
            return 0
        with self._lock:
            con = self._connect()
            try:
                con.executemany(
                    "INSERT INTO gaps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                    "count = gaps.count + excluded.count, last_seen = excluded.last_seen, "
                    "evidence = coalesce(excluded.evidence, gaps.evidence), detail = coalesce(excluded.detail, gaps.detail), "
                    "status = 'open', closed_at = NULL, closed_by = NULL",
                    rows,
                )
                self._bound(con)
            finally:
                con.close()
        return len(rows)

    def _bound(self, con: Any) -> None:
        n = con.execute("SELECT count(*) FROM gaps").fetchone()[0]
        if n > self.max_rows:
            con.execute(
                "DELETE FROM gaps WHERE key IN (SELECT key FROM gaps ORDER BY (status = 'open'), last_seen LIMIT ?)",
                [n - self.max_rows],
            )

    def all(self, status: str | None = None) -> list[Gap]:
        if not self.path.is_file():
            return []
        with self._lock:
            con = self._connect()
            try:
                sql = (
                    "SELECT * FROM gaps"
                    + (" WHERE status = ?" if status else "")
                    + " ORDER BY count DESC, last_seen DESC, key"
                )
                rows = con.execute(sql, [status] if status else []).fetchall()
            finally:
                con.close()
        return [Gap(*r) for r in rows]

    def close(self, keys: Iterable[str], closed_by: str, *, now: dt.datetime | None = None) -> int:
        keys = list(keys)
        if not keys:
            return 0
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self._lock:
            con = self._connect()
            try:
                con.executemany(
                    "UPDATE gaps SET status = 'closed', closed_at = ?, closed_by = ? WHERE key = ?",
                    [(now, closed_by, k) for k in keys],
                )
            finally:
                con.close()
        return len(keys)


def default_path(state_dir: Path) -> Path:
    return Path(state_dir) / "gaps.duckdb"


def record_gaps(state_dir: Path | str, entries: Iterable[dict[str, Any]], *, max_rows: int = 5000) -> int:
    """Record gaps in the workspace's gap log (``<state_dir>/gaps.duckdb``): the call ``kb triage`` makes
    for the errors it found uncovered, e.g. ``[{"kind": "uncovered-error", "text": template, "count": n}]``."""
    return GapLog(default_path(Path(state_dir)), max_rows=max_rows).record(entries)
