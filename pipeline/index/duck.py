"""DuckDB connections to kb's own state files (``.kb/``), which one kb process at a time may open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import ConflictError, InputError


def connect(path: Path, *, in_use: str, hint: str, read_only: bool = False) -> Any:
    """A connection to ``path``; a file another process holds is a ConflictError: ``in_use (reason).``"""
    import duckdb

    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        first = str(exc).splitlines()[0]
        if "lock" in first.lower():
            raise ConflictError(f"{in_use} ({first}).", hint) from None
        raise InputError(  # a corrupt or partial file (crash, full disk); caches catch this and rebuild
            f"{path} is not a readable DuckDB file ({first})",
            "It was left by an interrupted run or a full disk: move it aside (or delete it), then run again.",
        ) from None


def read_query(path: Path, sql: str, params: dict[str, Any], limit: int) -> tuple[list[str], list[tuple]]:
    """One parameterised query over a DuckDB file opened read-only (ops' run records)."""
    con = connect(path, in_use=f"{path} is in use by a writer", hint="retry when it is done", read_only=True)
    try:
        cur = con.execute(sql, params)
        return [d[0] for d in cur.description or []], cur.fetchmany(limit)
    finally:
        con.close()
