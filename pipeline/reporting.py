"""How stages tell the user what they do, without printing (only the CLI prints).

A stage takes a ``Reporter`` and calls ``info``/``warn`` for messages and ``progress`` for long
work. The CLI passes one that prints with rich; tests and the service pass ``Reporter()``, which
collects messages in ``lines``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Reporter:
    """Collects messages; subclass and override ``emit`` (and ``progress``) to show them."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def emit(self, level: str, message: str) -> None:
        self.lines.append((level, message))

    def info(self, message: str) -> None:
        self.emit("info", message)

    def warn(self, message: str) -> None:
        self.emit("warning", message)

    def skip(self, message: str) -> None:
        """Work skipped because its output is fresh (said, so the user knows why nothing happened)."""
        self.emit("skip", message)

    def progress(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Iterate ``items`` while showing progress. The base class just iterates."""
        yield from items
