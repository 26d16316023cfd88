"""``kb change apply`` / ``rollback``: all files or none, through a journal under ``plans/<id>/``.

Commit protocol. Before any user file is touched, the old contents (``before.json``) and the new
ones (``after.json``, written when planning) are on disk, then ``journal.json`` names every file
with the hash it has now and the hash it must end with. Each file is then replaced atomically
(temp file + rename). Only when all are written do ``applied.json`` and ``rollback.patch``
appear and the journal go away. A crash (kill -9, power loss) in between leaves the journal:
the next kb command calls :func:`recover`, which finishes the job (rolled forward) when every
file is either old or new, or puts the new ones back (rolled back) when a file was changed by
someone else in the meantime, and says which.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.change.engine import PlanRefused, load_plan, unified
from pipeline.errors import ConflictError, NotFoundError
from pipeline.workspace import Workspace, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes

JOURNAL = "journal.json"


@dataclass
class Applied:
    plan: str
    written: list[str] = field(default_factory=list)
    already: bool = False
    rollback_patch: Path | None = None


@contextmanager
def _locked(folder: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on the plan while it is applied (released by the OS if the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _sha(path: Path) -> str | None:
    try:
        return sha256_bytes(path.read_bytes())
    except FileNotFoundError:
        return None


def _contents(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def apply(workspace: Workspace, plan_id: str, *, pause_s: float = 0.0) -> Applied:
    """Write every changed file of the plan, or none; refuses invalid or stale plans."""
    load_plan(workspace, plan_id)
    with _locked(workspace.plans_dir / plan_id):
        return _apply(workspace, plan_id, pause_s)


def _apply(workspace: Workspace, plan_id: str, pause_s: float) -> Applied:
    plan = load_plan(workspace, plan_id)
    folder = workspace.plans_dir / plan_id
    if not plan.get("valid", False):
        bad = [f["display"] for f in plan["files"] if f["status"] == "invalid"]
        raise PlanRefused(
            f"plan {plan_id} has results that do not validate: {', '.join(bad[:10])}",
            f"See plans/{plan_id}/summary.txt; fix the recipe and plan again.",
        )
    changed = [(i, f) for i, f in enumerate(plan["files"]) if f["status"] == "changed"]
    if (folder / "applied.json").is_file() and all(_sha(Path(f["path"])) == f["sha256_after"] for _, f in changed):
        return Applied(plan_id, already=True)
    stale = [f["display"] for f in plan["files"] if _sha(Path(f["path"])) != f["sha256_before"]]
    if stale:
        raise PlanRefused(
            f"plan {plan_id} is stale: {len(stale)} file(s) changed since it was made: {', '.join(stale[:10])}",
            f"Plan again (kb change plan --recipe plans/{plan_id}/recipe.yaml) and apply the new plan.",
        )
    if not changed:
        return Applied(plan_id)
    before: dict[str, str | None] = {}
    for i, f in changed:
        path = Path(f["path"])
        before[str(i)] = path.read_bytes().decode("utf-8") if path.exists() else None
    after = _contents(folder, "after.json")
    for i, f in changed:
        text = after.get(str(i))
        if text is None or sha256_bytes(text.encode("utf-8")) != f["sha256_after"]:
            raise PlanRefused(
                f"plan {plan_id}: the planned contents of {f['display']} are missing or altered",
                "Plan again; do not edit files under plans/.",
            )
    atomic_write_json(folder / "before.json", before)
    entries = [
        {"key": str(i), "path": f["path"], "display": f["display"], "from": f["sha256_before"], "to": f["sha256_after"]}
        for i, f in changed
    ]
    journal = {"op": "apply", "plan": plan_id, "to": "after.json", "from": "before.json", "files": entries}
    atomic_write_json(folder / JOURNAL, journal)
    _execute(folder, journal, pause_s)
    _finish(folder, journal)
    return Applied(plan_id, [e["display"] for e in entries], rollback_patch=folder / "rollback.patch")


def rollback(workspace: Workspace, plan_id: str, *, force: bool = False, pause_s: float = 0.0) -> Applied:
    """Restore every file the plan changed, byte for byte."""
    load_plan(workspace, plan_id)
    with _locked(workspace.plans_dir / plan_id):
        return _rollback(workspace, plan_id, force, pause_s)


def _rollback(workspace: Workspace, plan_id: str, force: bool, pause_s: float) -> Applied:
    plan = load_plan(workspace, plan_id)
    folder = workspace.plans_dir / plan_id
    if not (folder / "applied.json").is_file():
        raise NotFoundError(
            f"plan {plan_id} is not applied; there is nothing to roll back",
            "Apply it first (kb change apply ID), or pick another plan.",
        )
    changed = [(i, f) for i, f in enumerate(plan["files"]) if f["status"] == "changed"]
    moved = [f["display"] for _, f in changed if _sha(Path(f["path"])) not in (f["sha256_after"], f["sha256_before"])]
    if moved and not force:
        raise ConflictError(
            f"{len(moved)} file(s) changed after the apply: {', '.join(moved[:10])}",
            "Rolling back would lose those edits; pass --force to restore the old bytes anyway.",
        )
    entries = [
        {
            "key": str(i),
            "path": f["path"],
            "display": f["display"],
            "from": _sha(Path(f["path"])),
            "to": f["sha256_before"],
        }
        for i, f in changed
    ]
    journal = {"op": "rollback", "plan": plan_id, "to": "before.json", "from": "after.json", "files": entries}
    atomic_write_json(folder / JOURNAL, journal)
    _execute(folder, journal, pause_s)
    _finish(folder, journal)
    return Applied(plan_id, [e["display"] for e in entries])


def _execute(folder: Path, journal: dict[str, Any], pause_s: float) -> None:
    target = _contents(folder, journal["to"])
    for entry in journal["files"]:
        path = Path(entry["path"])
        if _sha(path) == entry["to"]:
            continue
        text = target.get(entry["key"])
        if text is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(path, text.encode("utf-8"))
        if pause_s:
            time.sleep(pause_s)


def _finish(folder: Path, journal: dict[str, Any]) -> None:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = {"at": now, "files": [e["display"] for e in journal["files"]]}
    if journal["op"] == "apply":
        before, after = _contents(folder, "before.json"), _contents(folder, "after.json")
        patch = "".join(
            unified(
                after.get(e["key"]) or "",
                before.get(e["key"]) or "",
                e["display"],
                new_file=after.get(e["key"]) is None,
                deleted=before.get(e["key"]) is None,
            )
            for e in journal["files"]
        )
        atomic_write_text(folder / "rollback.patch", patch)
        atomic_write_json(folder / "applied.json", record)
        (folder / "rolledback.json").unlink(missing_ok=True)
    else:
        atomic_write_json(folder / "rolledback.json", record)
        (folder / "applied.json").unlink(missing_ok=True)
    (folder / JOURNAL).unlink(missing_ok=True)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pending(plans_dir: Path) -> list[Path]:
    """Journals of interrupted applies or rollbacks (cheap: one glob)."""
    return sorted(plans_dir.glob(f"*/{JOURNAL}")) if plans_dir.is_dir() else []


def recover(workspace: Workspace) -> list[str]:
    """Finish or undo every interrupted apply/rollback; one sentence per plan saying which."""
    out = []
    for path in pending(workspace.plans_dir):
        with _locked(path.parent, wait=False) as mine:
            if mine and path.is_file():  # not being applied right now by another process
                out += _recover_one(path)
    return out


def _recover_one(path: Path) -> list[str]:
    folder = path.parent
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        path.unlink(missing_ok=True)  # a torn journal: no user file was written after it
        return [f"plan {folder.name}: an interrupted apply had not started writing; nothing changed"]
    states = [_sha(Path(e["path"])) for e in journal["files"]]
    pairs = list(zip(journal["files"], states, strict=True))
    foreign = [e["display"] for e, s in pairs if s not in (e["from"], e["to"])]
    op = journal["op"]
    if not foreign:
        _execute(folder, journal, 0.0)
        _finish(folder, journal)
        return [
            f"plan {folder.name}: an interrupted {op} was rolled forward "
            f"({len(states)} file(s) now {'new' if op == 'apply' else 'restored'})"
        ]
    undo = {
        **journal,
        "to": journal["from"],
        "from": journal["to"],
        "files": [{**e, "from": e["to"], "to": e["from"]} for e, s in pairs if s == e["to"]],
    }
    _execute(folder, undo, 0.0)
    path.unlink(missing_ok=True)
    return [
        f"plan {folder.name}: an interrupted {op} was rolled back (its files are as before it), because "
        f"{', '.join(foreign[:5])} changed meanwhile; plan again"
    ]
