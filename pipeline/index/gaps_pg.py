"""The gap log's Postgres twin: the same table (``<schema>.gaps``) in the Postgres index's schema.

Used when kb serves from Postgres (``kb serve --index postgresql://…`` or ``KB_INDEX_URL``), so every
worker and every machine writes one log and ``kb gaps`` reads it from there. Same keys, redaction
and bound as the DuckDB file: ``record``, ``all`` and ``close`` are ``pipeline.index.gaps.GapTable``'s,
run here with psycopg's placeholders; one short connection per call (psycopg only here and in
``pipeline.index.postgres``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pipeline.index.gaps import GapSQL, GapTable
from pipeline.index.postgres import _connect, _schema


class PostgresGapLog(GapTable):
    def __init__(self, url: str, *, schema: str = "kb", max_rows: int = 5000) -> None:
        self.url = url
        self.schema = _schema(schema)
        super().__init__(GapSQL(f"{self.schema}.gaps", "%s"), max_rows)
        self._ready = False

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

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        with self._con() as con, con.cursor() as cur:  # the connection commits (or rolls back) and closes on exit
            yield cur
