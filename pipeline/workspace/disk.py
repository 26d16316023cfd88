"""A full disk (or ``ulimit -f``) while writing becomes a DiskFullError naming the file and the free space."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import DiskFullError, KbError

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded", "disk is full")


def disk_full_error(exc: BaseException, dest: Path) -> DiskFullError | None:
    """A DiskFullError naming ``dest`` and the free space when ``exc`` is a full disk (or ulimit -f)."""
    text = str(exc)
    if not ((isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS) or any(t in text for t in _DISK_FULL_TEXT)):
        return None
    where = Path(dest)
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = f"{shutil.disk_usage(where).free / 1e6:,.1f} MB free on {where}"
    except OSError:
        free = "free space unknown"
    too_large = (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or "File too large" in text
    why = "the file-size limit (ulimit -f) was reached" if too_large else "the disk is full"
    return DiskFullError(
        f"could not write {dest}: {why} ({free}).",
        "Free some space (or raise the limit, or write elsewhere, e.g. --out), then run the command again: "
        "kb removes its partial files itself.",
    )


@contextmanager
def disk_guard(dest: Path) -> Iterator[None]:
    """Turn a full disk (OSError or a library's message) while writing ``dest`` into DiskFullError."""
    try:
        yield
    except DiskFullError:
        raise
    except KbError:
        raise
    except Exception as exc:
        full = disk_full_error(exc, dest)
        if full is None:
            raise
        raise full from None
