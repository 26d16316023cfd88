"""The distillation run log: a DuckDB file under ``.kb/`` with every LLM request and its cost.

Tables: ``runs`` (one row per ``kb distill``), ``requests`` (every HTTP completion, re-asks
and retries included), ``atoms`` (what each written atom cost). ``kb cost`` reads it. A run
interrupted by Ctrl-C keeps the rows it logged and shows as ``interrupted``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.index import duck

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id VARCHAR PRIMARY KEY, started TIMESTAMP, finished TIMESTAMP, backend VARCHAR,
  model VARCHAR, prompt VARCHAR, status VARCHAR, interviews INTEGER, windows INTEGER,
  cached_windows INTEGER, atoms_written INTEGER, proposals INTEGER, dropped_items INTEGER,
  requests INTEGER, tokens_in BIGINT, tokens_out BIGINT, cost_usd DOUBLE);
CREATE TABLE IF NOT EXISTS requests (
  run_id VARCHAR, requested_at TIMESTAMP, interview VARCHAR, window_index INTEGER, tokens_in BIGINT,
  tokens_out BIGINT, cost_usd DOUBLE, reask BOOLEAN, retries INTEGER, status VARCHAR);
CREATE TABLE IF NOT EXISTS atoms (
  run_id VARCHAR, atom_id VARCHAR, atom_type VARCHAR, interviews VARCHAR, action VARCHAR,
  tokens_in BIGINT, tokens_out BIGINT, cost_usd DOUBLE);
"""


def _connect(path: Path, read_only: bool = False) -> Any:
    return duck.connect(
        path,
        in_use=f"The run log {path} is in use by another kb process",
        hint="Wait for the other 'kb distill' to finish, then retry.",
        read_only=read_only,
    )


class RunLog:
    """Append-only log of one run. Use as a context manager; ``finish`` records the totals."""

    def __init__(self, path: Path, *, backend: str, model: str | None, prompt: str | None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._con = _connect(self.path)
        self._con.execute(_SCHEMA)
        self._con.execute(
            "INSERT INTO runs (run_id, started, backend, model, prompt, status) VALUES (?, ?, ?, ?, ?, 'interrupted')",
            [self.run_id, _now(), backend, model, prompt],
        )

    def request(
        self,
        interview: str | None,
        window: int | None,
        tokens_in: int,
        tokens_out: int,
        cost_usd: float,
        *,
        reask: bool = False,
        retries: int = 0,
        status: str = "ok",
    ) -> None:
        self._con.execute(
            "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.run_id, _now(), interview, window, tokens_in, tokens_out, cost_usd, reask, retries, status],
        )

    def atom(
        self,
        atom_id: str,
        atom_type: str,
        interviews: list[str],
        action: str,
        tokens_in: int,
        tokens_out: int,
        cost_usd: float,
    ) -> None:
        self._con.execute(
            "INSERT INTO atoms VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self.run_id, atom_id, atom_type, ",".join(interviews), action, tokens_in, tokens_out, cost_usd],
        )

    def finish(self, status: str, **counts: int) -> None:
        totals = self._con.execute(
            "SELECT count(*), coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), coalesce(sum(cost_usd), 0) "
            "FROM requests WHERE run_id = ?",
            [self.run_id],
        ).fetchone()
        cols = ["interviews", "windows", "cached_windows", "atoms_written", "proposals", "dropped_items"]
        sets = ", ".join(f"{c} = ?" for c in cols)
        self._con.execute(
            f"UPDATE runs SET finished = ?, status = ?, requests = ?, tokens_in = ?, tokens_out = ?, cost_usd = ?, {sets} "
            "WHERE run_id = ?",
            [_now(), status, *totals, *[counts.get(c, 0) for c in cols], self.run_id],
        )

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None  # drop the handle: exceptions kept by callers may keep this object alive

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_atoms(path: Path, run_id: str, rows: list[tuple], *, written: int, proposals: int) -> None:
    """Record what each atom of a finished run cost (after the atoms were written)."""
    con = _connect(Path(path))
    try:
        con.execute(_SCHEMA)
        for atom_id, atom_type, interviews, action, tin, tout, cost in rows:
            con.execute(
                "INSERT INTO atoms VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, atom_id, atom_type, ",".join(interviews), action, tin, tout, cost],
            )
        con.execute("UPDATE runs SET atoms_written = ?, proposals = ? WHERE run_id = ?", [written, proposals, run_id])
    finally:
        con.close()


def merge_run(
    path: Path,
    run_id: str,
    requests: list[dict[str, Any]],
    *,
    backend: str,
    model: str | None,
    prompt: str | None,
    status: str,
    interviews: int,
) -> int:
    """Fold workers' per-request records into the run log as one run; returns the requests merged.

    Workers cannot share the DuckDB write connection, so each writes one JSON record per request
    and the one writer of a Celery run (its callback) calls this. The run's rows are replaced, so
    merging twice (a redelivered callback) counts each request once.
    """
    con = _connect(Path(path))
    try:
        con.execute(_SCHEMA)
        con.execute("DELETE FROM requests WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        for r in requests:
            con.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, dt.datetime.fromisoformat(r["requested_at"]), r.get("interview"), r.get("window"),
                 r["tokens_in"], r["tokens_out"], r["cost_usd"], r.get("reask", False), r.get("retries", 0),
                 r.get("status", "ok")],
            )  # fmt: skip
        con.execute(
            "INSERT INTO runs (run_id, started, finished, backend, model, prompt, status, interviews, windows, "
            "requests, tokens_in, tokens_out, cost_usd) SELECT ?, min(requested_at), ?, ?, ?, ?, ?, ?, "
            "count(DISTINCT window_index || interview), count(*), coalesce(sum(tokens_in), 0), "
            "coalesce(sum(tokens_out), 0), coalesce(sum(cost_usd), 0) FROM requests WHERE run_id = ?",
            [run_id, _now(), backend, model, prompt, status, interviews, run_id],
        )
        return len(requests)
    finally:
        con.close()


@dataclass
class CostReport:
    runs: list[dict[str, Any]] = field(default_factory=list)
    interviews: list[dict[str, Any]] = field(default_factory=list)
    atoms: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)


def report(path: Path, *, run_id: str | None = None, limit: int = 20) -> CostReport:
    """Per run, per interview and per atom costs, and the totals (empty when nothing was logged)."""
    path = Path(path)
    if not path.is_file():
        return CostReport(totals={"runs": 0, "requests": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0})
    con = _connect(path, read_only=True)
    try:
        where, args = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])

        def rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        runs = rows(
            f"SELECT run_id, started, finished, backend, model, prompt, status, interviews, windows, cached_windows, "
            f"atoms_written, proposals, dropped_items, requests, tokens_in, tokens_out, cost_usd FROM runs {where} "
            f"ORDER BY started DESC LIMIT {int(limit)}",
            args,
        )
        interviews = rows(
            f"SELECT interview, count(*) AS requests, sum(CASE WHEN reask THEN 1 ELSE 0 END) AS reasks, "
            f"sum(retries) AS retries, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, "
            f"sum(cost_usd) AS cost_usd FROM requests {where} GROUP BY interview ORDER BY interview",
            args,
        )
        atoms = rows(
            f"SELECT atom_id, atom_type, interviews, max(tokens_in) AS tokens_in, max(tokens_out) AS tokens_out, "
            f"max(cost_usd) AS cost_usd FROM atoms {where} GROUP BY atom_id, atom_type, interviews ORDER BY atom_id",
            args,
        )
        tot = rows(
            f"SELECT count(DISTINCT run_id) AS runs, count(*) AS requests, coalesce(sum(tokens_in), 0) AS tokens_in, "
            f"coalesce(sum(tokens_out), 0) AS tokens_out, coalesce(sum(cost_usd), 0) AS cost_usd FROM requests {where}",
            args,
        )[0]
        tot["runs"] = len(rows(f"SELECT run_id FROM runs {where}", args))
        return CostReport(runs=runs, interviews=interviews, atoms=atoms, totals=tot)
    finally:
        con.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
