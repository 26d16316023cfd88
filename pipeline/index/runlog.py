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

from pipeline.errors import DiskFullError
from pipeline.index import duck
from pipeline.workspace import disk_full_error, disk_guard

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


START_HINT = (
    "Free some space on that disk (or raise 'ulimit -f'), then run 'kb distill' again: nothing was sent to the LLM yet."
)
RUN_HINT = (
    "Free some space on that disk (or raise 'ulimit -f'), then run 'kb distill' again: the answers already "
    "received are in the window cache (.kb/distill/windows) and are not paid for twice; this run's cost rows "
    "are missing from 'kb cost'."
)


def _full(exc: BaseException, path: Path, hint: str) -> DiskFullError | None:
    full = disk_full_error(exc, path)
    if full is not None:
        full.message = f"could not write the run log: {full.message}"
        full.hint = hint
    return full


class RunLog:
    """Append-only log of one run. Use as a context manager; ``finish`` records the totals.

    A log that cannot be written (full disk, ``ulimit -f``) fails at the start, before any request
    is paid for (a log file this run created is removed, so the next run does not find a broken
    one). Mid-run, a row that cannot be written is kept in memory and retried with the next one,
    so the run (and its window cache) goes on; ``finish(strict=True)`` then raises the error.
    """

    def __init__(self, path: Path, *, backend: str, model: str | None, prompt: str | None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._pending: list[tuple[str, list[Any]]] = []
        self.error: DiskFullError | None = None
        existed = {p: p.exists() for p in (self.path, self.path.with_name(self.path.name + ".wal"))}
        self._con = None
        try:
            self._con = _connect(self.path)
            self._con.execute(_SCHEMA)
            self._con.execute(
                "INSERT INTO runs (run_id, started, backend, model, prompt, status) "
                "VALUES (?, ?, ?, ?, ?, 'interrupted')",
                [self.run_id, _now(), backend, model, prompt],
            )
        except Exception as exc:
            full = _full(exc, self.path, START_HINT)
            if full is None:
                raise
            self._abandon(existed)
            raise full from None

    def _abandon(self, existed: dict[Path, bool]) -> None:
        """Close, and remove the log files this run created (a half-made DuckDB file reads as corrupt)."""
        try:
            if self._con is not None:
                self._con.close()
        except Exception:  # the close checkpoints, which the full disk may refuse too
            pass
        self._con = None
        for p, was_there in existed.items():
            if not was_there:
                p.unlink(missing_ok=True)

    def _write(self, sql: str, params: list[Any]) -> None:
        """Run ``sql`` after any rows a full disk held back; on a full disk keep it for later."""
        self._pending.append((sql, params))
        if self.error is not None:  # DuckDB may have invalidated the connection: keep the rows, stop writing
            return
        try:
            while self._pending:
                assert self._con is not None
                self._con.execute(*self._pending[0])
                self._pending.pop(0)
        except Exception as exc:
            full = _full(exc, self.path, RUN_HINT)
            if full is None:
                raise
            self.error = full

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
        self._write(
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
        self._write(
            "INSERT INTO atoms VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self.run_id, atom_id, atom_type, ",".join(interviews), action, tokens_in, tokens_out, cost_usd],
        )

    def finish(self, status: str, *, strict: bool = True, **counts: int) -> None:
        """Record the run's totals. ``strict``: raise a full disk's DiskFullError (not while another
        exception is on its way out: that one is the news)."""
        assert self._con is not None
        totals = list(
            self._con.execute(
                "SELECT count(*), coalesce(sum(tokens_in), 0), coalesce(sum(tokens_out), 0), "
                "coalesce(sum(cost_usd), 0) FROM requests WHERE run_id = ?",
                [self.run_id],
            ).fetchone()
            or (0, 0, 0, 0)
        )
        for sql, params in self._pending:  # rows a full disk held back count too
            if sql.startswith("INSERT INTO requests"):
                totals = [totals[0] + 1, totals[1] + params[4], totals[2] + params[5], totals[3] + params[6]]
        cols = ["interviews", "windows", "cached_windows", "atoms_written", "proposals", "dropped_items"]
        sets = ", ".join(f"{c} = ?" for c in cols)
        self._write(
            f"UPDATE runs SET finished = ?, status = ?, requests = ?, tokens_in = ?, tokens_out = ?, cost_usd = ?, {sets} "
            "WHERE run_id = ?",
            [_now(), status, *totals, *[counts.get(c, 0) for c in cols], self.run_id],
        )
        self._write("CHECKPOINT", [])  # the file grows here, not at close: a full disk is seen now
        if strict and self.error is not None:
            raise self.error

    def close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            except Exception as exc:  # the close checkpoints; after a full disk's error that fails too
                if self.error is None and _full(exc, self.path, RUN_HINT) is None:
                    raise
            self._con = None  # drop the handle: exceptions kept by callers may keep this object alive

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_atoms(path: Path, run_id: str, rows: list[tuple], *, written: int, proposals: int) -> None:
    """Record what each atom of a finished run cost (after the atoms were written)."""
    with disk_guard(Path(path)):
        _append_atoms(_connect(Path(path)), run_id, rows, written=written, proposals=proposals)


def _append_atoms(con: Any, run_id: str, rows: list[tuple], *, written: int, proposals: int) -> None:
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
