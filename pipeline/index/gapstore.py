"""Which gap log: the DuckDB file (``.kb/gaps.duckdb``) or the Postgres index's table, from the settings.

Both stores have one interface (``GapStore``), implemented once by ``pipeline.index.gaps.GapTable`` (each store
gives its SQL dialect and a connection), and share its rows, keys and redaction; ``kb serve``, ``kb triage``
and ``kb gaps`` all call ``open_gap_log``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.index import gaps
from pipeline.index.gaps import Gap, GapLog

if TYPE_CHECKING:
    from pipeline.config import Settings


class GapStore(Protocol):
    """What ``kb serve``, ``kb triage`` and ``kb gaps`` need of a gap log: the DuckDB file or the Postgres table."""

    max_rows: int

    def record(self, entries: Iterable[dict[str, Any]], *, now: dt.datetime | None = None) -> int: ...

    def all(self, status: str | None = None) -> list[Gap]: ...

    def close(self, keys: Iterable[str], closed_by: str, *, now: dt.datetime | None = None) -> int: ...


def open_gap_log(state_dir: Path | str, settings: Settings, index_url: str | None = None) -> GapStore:
    """The gap log for these settings: a table in the Postgres index's schema when one is used (``index_url``,
    i.e. ``kb serve --index postgresql://…``, or ``index.url`` / ``KB_INDEX_URL``), else ``<state_dir>/gaps.duckdb``."""
    from pipeline.index.postgres import is_postgres_url

    url = index_url if is_postgres_url(index_url) else settings.index.url
    if url and is_postgres_url(url):
        from pipeline.index.gaps_pg import PostgresGapLog

        return PostgresGapLog(url, schema=settings.index.schema_name, max_rows=settings.gaps.max_rows)
    return GapLog(gaps.default_path(Path(state_dir)), max_rows=settings.gaps.max_rows)
