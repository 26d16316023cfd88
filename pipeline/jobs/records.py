"""A Celery run's state on the shared workspace: one small JSON file per task, written atomically.

Workers never share a database handle: each task writes ``.kb/jobs/<run>/tasks/<stage>--<id>.json``
(state, pid, timings, summary) and one ``requests/<task>-w<window>-<n>.json`` per LLM completion,
keyed so that a redelivered task rewrites the same files instead of adding new ones. ``kb jobs
status`` reads them without a broker; the run's callback is the one writer that folds the
requests into the DuckDB run log (``pipeline.index.runlog.merge_run``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import NotFoundError
from pipeline.workspace import Workspace, atomic_write_json

#: The stages of a Celery run, in order: per interview, then the run's callback.
STAGES: tuple[str, ...] = ("transcribe", "diarise", "distill", "finalize")
#: The per-interview ones (the transcribe step sends two tasks: asr, then diarise).
INTERVIEW_STAGES: tuple[str, ...] = STAGES[:-1]
#: The callback's record name (it is not per interview).
RUN_SCOPE = "_run"


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()


def jobs_dir(ws: Workspace) -> Path:
    return ws.state_dir / "jobs"


def run_dir(ws: Workspace, run_id: str) -> Path:
    return jobs_dir(ws) / run_id


def write_run(ws: Workspace, run_id: str, meta: dict[str, Any]) -> None:
    atomic_write_json(run_dir(ws, run_id) / "run.json", meta)


def read_run(ws: Workspace, run_id: str) -> dict[str, Any]:
    path = run_dir(ws, run_id) / "run.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        known = runs(ws)[:5]
        raise NotFoundError(
            f"No Celery run '{run_id}' in {ws.relative(jobs_dir(ws))}/.",
            ("Recent runs: " + ", ".join(known)) if known else "Start one with 'kb run --via celery'.",
        ) from None


def runs(ws: Workspace) -> list[str]:
    """Run ids, newest first."""
    folder = jobs_dir(ws)
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if (p / "run.json").is_file()), reverse=True)


def _task_path(ws: Workspace, run_id: str, stage: str, interview: str) -> Path:
    return run_dir(ws, run_id) / "tasks" / f"{stage}--{interview}.json"


def record_task(ws: Workspace, run_id: str, stage: str, interview: str, **fields: Any) -> None:
    """Update a task's record (its own file: no other writer touches it)."""
    path = _task_path(ws, run_id, stage, interview)
    data = read_task(ws, run_id, stage, interview) or {}
    data.update(stage=stage, interview=interview, **fields)
    if fields.get("state") == "started":
        data.update(pid=os.getpid(), ppid=os.getppid(), host=socket.gethostname(), started=now())
        data["attempts"] = int(data.get("attempts", 0)) + 1
    elif "state" in fields:
        data["finished"] = now()
    atomic_write_json(path, data)


def read_task(ws: Workspace, run_id: str, stage: str, interview: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(_task_path(ws, run_id, stage, interview).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def request_name(task_id: str, window: int | None, n: int) -> str:
    """(task id, window, n-th request of that window): a redelivered task's request gets the same name."""
    return f"{task_id}-w{'x' if window is None else window}-{n}"


def record_request(ws: Workspace, run_id: str, task_id: str, window: int | None, n: int, data: dict[str, Any]) -> None:
    """One LLM completion of a task; its name (``request_name``) makes it count once."""
    name = request_name(task_id, window, n) + ".json"
    atomic_write_json(run_dir(ws, run_id) / "requests" / name, {**data, "requested_at": now()})


def requests(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    folder = run_dir(ws, run_id) / "requests"
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue  # a temp file of a write in flight is never a .json: this one is unreadable, skip it
    return out


@dataclass
class RunStatus:
    run_id: str
    meta: dict[str, Any]
    tasks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (stage, interview) -> record
    requests: int = 0

    @property
    def interviews(self) -> list[str]:
        return list(self.meta.get("interviews", []))

    def state(self, stage: str, interview: str) -> str:
        rec = self.tasks.get((stage, interview))
        return str(rec.get("state", "queued")) if rec else "queued"

    @property
    def total(self) -> int:
        """Tasks of the run: the per-interview ones its steps send, and the callback."""
        steps = self.meta.get("steps") or ("transcribe", "distill")
        per = (2 if "transcribe" in steps else 0) + (1 if "distill" in steps else 0)
        return per * len(self.interviews) + 1

    @property
    def finished(self) -> int:
        return sum(1 for rec in self.tasks.values() if rec.get("state") in ("done", "skipped", "failed"))

    @property
    def outcome(self) -> str:
        """queued | running | done | failed: the run as a whole (its callback decides)."""
        final = self.state("finalize", RUN_SCOPE)
        if final in ("done", "failed"):
            return final
        if any(rec.get("state") == "failed" and rec.get("fatal") for rec in self.tasks.values()):
            return "failed"
        return "running" if self.tasks else "queued"


def status(ws: Workspace, run_id: str) -> RunStatus:
    meta = read_run(ws, run_id)
    st = RunStatus(run_id, meta)
    folder = run_dir(ws, run_id) / "tasks"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        st.tasks[(rec["stage"], rec["interview"])] = rec
    st.requests = len(list((run_dir(ws, run_id) / "requests").glob("*.json")))
    return st
