"""The gap log's Postgres twin: the same table (``<schema>.gaps``) in the Postgres index's schema.

Used when kb serves from Postgres (``kb serve --index postgresql://…`` or ``KB_INDEX_URL``), so every
worker and every machine writes one log and ``kb gaps`` reads it from there. Same keys, same
redaction (``pipeline.index.gaps.gap_rows``), same bound as the DuckDB file; one short connection
per call (psycopg only here and in ``pipeline.index.postgres``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from typing import Any

from pipeline.index.gaps import Gap, GapSQL, gap_rows
from pipeline.index.postgres import _connect, _schema


class PostgresGapLog:
    def __init__(self, url: str, *, schema: str = "kb", max_rows: int = 5000) -> None:
        self.url = url
        self.schema = _schema(schema)
        self.max_rows = max(1, int(max_rows))
        self._lock = threading.Lock()
        self._ready = False
        self.sql = GapSQL(f"{self.schema}.gaps", "%s")

    def _con(self) -> Any:
        con = _connect(self.url, vectors=False)
        if not self._ready:
            s = self.schema
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.gaps (key text PRIMARY KEY, kind text NOT NULL, text text NOT NULL, "
                "atom_id text, evidence double precision, count integer NOT NULL, first_seen timestamp NOT NULL, "
                "last_seen timestamp NOT NULL, status text NOT NULL, closed_at timestamp, closed_by text, detail text)"
            )
            con.commit()
            self._ready = True
        return con

    def record(self, entries: Iterable[dict[str, Any]], *, now: dt.datetime | None = None) -> int:
        """Add or count up gaps (see ``pipeline.index.gaps.GapLog.record``); one transaction with the bound."""
        rows = gap_rows(entries, now)
        if not rows:
            return 0
        with self._lock, self._con() as con, con.cursor() as cur:
            cur.executemany(self.sql.upsert, rows)
            cur.execute(self.sql.count)
            n = cur.fetchone()[0]
            if n > self.max_rows:
                cur.execute(self.sql.trim, [n - self.max_rows])
        return len(rows)

    def all(self, status: str | None = None) -> list[Gap]:
        sql, params = self.sql.select(status)
        with self._lock, self._con() as con:
            rows = con.execute(sql, params).fetchall()
        return [Gap(*r) for r in rows]

    def close(self, keys: Iterable[str], closed_by: str, *, now: dt.datetime | None = None) -> int:
        keys = list(keys)
        if not keys:
            return 0
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self._lock, self._con() as con, con.cursor() as cur:
            cur.executemany(self.sql.close, [(now, closed_by, k) for k in keys])
        return len(keys)
