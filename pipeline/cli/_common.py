"""What every command module shares: the context state, the console and a rich Reporter."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from pipeline.config import Settings
from pipeline.errors import NotFoundError
from pipeline.reporting import Reporter
from pipeline.workspace import MARKERS, Workspace, find_workspace

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    workspace_arg: Path | None = None
    quiet: bool = False
    _ws: Workspace | None = field(default=None, repr=False)

    @property
    def workspace(self) -> Workspace:
        if self._ws is None:
            if self.workspace_arg is None and not _has_marker(find_workspace()):
                # never scatter interviews/, atoms/, dist/ or .kb/ into an unrelated folder (e.g. ~)
                raise NotFoundError(
                    f"No kb workspace here: no {' or '.join(MARKERS)} in {Path.cwd()} or a folder above it.",
                    "cd into your workspace, pass --workspace DIR (or set KB_WORKSPACE), or create one with 'kb init DIR'.",
                )
            self._ws = Workspace.at(self.workspace_arg)
        return self._ws

    def settings(self, **flags: Any) -> Settings:
        """Settings for this workspace; ``flags`` use dotted keys (``llm.model``), None = unset."""
        settings = Settings.load(self.workspace.root, **flags)
        limit_native_threads(settings.threads)
        return settings


def _has_marker(folder: Path) -> bool:
    return any((folder / m).is_file() for m in MARKERS)


_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools at ``settings.threads`` before numpy or torch load (they read the
    environment once, at import). On small shared machines one thread is faster and steadier."""
    if any(mod in sys.modules for mod in ("numpy", "torch")):
        return
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(threads))


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # pragma: no cover - invoked outside the app
        obj = State()
        ctx.find_root().obj = obj
    return obj


class RichReporter(Reporter):
    """Prints messages to stderr (stdout stays clean for --format json) and shows progress bars."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__()
        self.quiet = quiet

    def emit(self, level: str, message: str) -> None:
        super().emit(level, message)
        if self.quiet and level in ("info", "skip"):
            return
        style = {"error": "red", "warning": "yellow", "skip": "dim", "info": ""}.get(level, "")
        prefix = {"error": "error: ", "warning": "warning: ", "skip": "skip: "}.get(level, "")
        err_console.print(f"{prefix}{message}", style=style or None, markup=False)

    def progress(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        if self.quiet or not sys.stderr.isatty() or os.environ.get("CI"):
            yield from items
            return
        from rich.progress import track

        yield from track(items, description=description, total=total, console=err_console, transient=True)


def reporter(ctx: typer.Context) -> RichReporter:
    return RichReporter(quiet=state(ctx).quiet)
