"""Crash leftovers: temp files of kb runs whose writer process is gone are found and removed (and said)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.workspace.files import TEMP_NAME_RE, remove_path
from pipeline.workspace.paths import Workspace


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) writes nothing more
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def leftovers(folders: list[Path], depth: int = 3) -> list[Path]:
    """kb temp files/folders in ``folders`` (``depth`` levels down) whose writer process is gone."""
    found: list[Path] = []
    todo = [(Path(f), 0) for f in folders]
    while todo:
        folder, level = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = TEMP_NAME_RE.match(entry.name)
            if m:
                if not _pid_alive(int(m.group(1))):
                    found.append(Path(entry.path))
            elif level < depth and entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".git"):
                todo.append((Path(entry.path), level + 1))
    return sorted(found)


def clean_leftovers(workspace: Workspace, reporter: Any = None) -> list[Path]:
    """Remove temp files of crashed kb runs (writer pid gone) anywhere kb writes; report them.

    A concurrent run's temp files (its pid alive) are left alone.
    """
    root = workspace.root
    folders = [root / "dist", root / "build", workspace.state_dir, workspace.atoms_dir, workspace.interviews_dir]
    found = sorted(leftovers([f for f in folders if f.is_dir()], depth=3) + leftovers([root], depth=0))
    for path in found:
        remove_path(path)
    if found and reporter is not None:
        pids = sorted({TEMP_NAME_RE.match(p.name).group(1) for p in found})  # type: ignore[union-attr]  # found holds only names TEMP_NAME_RE matched
        names = ", ".join(workspace.relative(p) for p in found[:5]) + (" ..." if len(found) > 5 else "")
        reporter.info(
            f"removed {len(found)} leftover temp file(s) of interrupted kb run(s) (pid {', '.join(pids)}): {names}"
        )
    return found
