"""DuckDB connections to kb's own state files (``.kb/``), which one kb process at a time may open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import ConflictError


def connect(path: Path, *, in_use: str, hint: str, read_only: bool = False) -> Any:
    """A connection to ``path``; a file another process holds is a ConflictError: ``in_use (reason).``"""
    import duckdb

    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise ConflictError(f"{in_use} ({str(exc).splitlines()[0]}).", hint) from None


def read_query(path: Path, sql: str, params: dict[str, Any], limit: int) -> tuple[list[str], list[tuple]]:
    """One parameterised query over a DuckDB file opened read-only (ops' run records)."""
    con = connect(path, in_use=f"{path} is in use by a writer", hint="retry when it is done", read_only=True)
    try:
        cur = con.execute(sql, params)
        return [d[0] for d in cur.description or []], cur.fetchmany(limit)
    finally:
        con.close()
