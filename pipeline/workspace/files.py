"""Atomic writes: a temp file in the same folder renamed into place, so a crash never leaves half a file."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import ConflictError
from pipeline.workspace.disk import disk_guard

#: Every temp file or folder kb creates starts with this, then the writer's pid: ``.kb-tmp-<pid>-``.
#: The next run removes those whose writer is gone (``clean_leftovers``) and says so.
TEMP_PREFIX = ".kb-tmp-"
TEMP_NAME_RE = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")


def temp_prefix() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-"


def temp_dir(beside: Path) -> tempfile.TemporaryDirectory:
    """A scratch folder in ``beside`` (inside the workspace, never the system temp folder)."""
    beside = Path(beside)
    beside.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=temp_prefix(), dir=beside)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    with disk_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=f".{path.name}.tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            else:
                os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_new_text(path: Path, text: str) -> None:
    """Create ``path``; refuse if it exists (never overwrite what a person may own)."""
    path = Path(path)
    if path.exists():
        raise ConflictError(
            f"{path} already exists; kb does not overwrite it.",
            "Choose another title or id, or delete the file first if you really mean to.",
        )
    atomic_write_text(path, text)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it into place only if the block succeeds.

    For libraries that insist on writing a file themselves (DuckDB, mkdocs). The temp name has
    kb's prefix and this pid, so files a library adds beside it (DuckDB's ``.wal``) carry both.
    """
    path = Path(path)
    with disk_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=f".{path.name}.tmp", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.replace(tmp_path, path)
        finally:
            for leftover in (tmp_path, *tmp_path.parent.glob(glob.escape(tmp_path.name) + ".*")):
                remove_path(leftover)


def remove_path(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
