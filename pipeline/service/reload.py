"""The bundle being served, swapped atomically on reload without dropping in-flight requests.

Each request takes a lease on the current bundle (``with holder.lease() as live``). A reload
loads and validates the new bundle first (a bad one raises and the old one stays), then swaps
the reference under a lock; the old bundle is closed when its last lease ends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import BundleError
from pipeline.index.bundle import newest_bundle


def resolve_bundle(path: Path | str) -> Path:
    """A bundle file, or the newest ``kb-*.duckdb`` in a folder."""
    p = Path(path)
    if p.is_dir() or (not p.exists() and p.suffix != ".duckdb"):
        found = newest_bundle(p)
        if found is None:
            raise BundleError(f"No bundle (kb-*.duckdb) in {p}.", "Write one with 'kb export', or pass --bundle FILE.")
        return found
    if not p.is_file():
        raise BundleError(f"Bundle {p} does not exist.", "Write one with 'kb export', or pass --bundle FILE.")
    return p


@dataclass
class Live:
    """One loaded bundle and what the service derived from it."""

    bundle: Any
    path: Path
    mtime: float
    loaded_at: float = field(default_factory=time.time)
    leases: int = 0
    retired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # what the service derived (calibration)

    @property
    def manifest(self) -> Any:
        return self.bundle.manifest


class BundleHolder:
    def __init__(
        self,
        source: Path | str,
        loader: Callable[[Path, Any], Any],
        prepare: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        """``source``: a bundle file or a folder of them; ``loader(path, previous_bundle)``;
        ``prepare(bundle)``: derived data kept with it (computed before the swap)."""
        self.source = Path(source)
        self._loader = loader
        self._prepare = prepare
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.current = self._load(resolve_bundle(self.source), None)

    def _load(self, path: Path, previous: Any) -> Live:
        mtime = path.stat().st_mtime
        bundle = self._loader(path, previous)
        extra = self._prepare(bundle) if self._prepare else {}
        return Live(bundle=bundle, path=path, mtime=mtime, extra=extra)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Live]:
        with self._lock:
            live = self.current
            live.leases += 1
        try:
            yield live
        finally:
            with self._lock:
                live.leases -= 1
                close = live.retired and live.leases == 0
            if close:
                _close(live.bundle)

    def reload(self, path: Path | str | None = None) -> Live:
        """Load ``path`` (default: the source again), validate it, swap it in. Raises on a bad bundle."""
        with self._reload_lock:
            target = resolve_bundle(Path(path) if path else self.source)
            new = self._load(target, self.current.bundle)
            with self._lock:
                old, self.current = self.current, new
                old.retired = True
                close = old.leases == 0
            if path:
                self.source = Path(path)
            if close:
                _close(old.bundle)
            return new

    def changed(self) -> bool:
        """True when the source now names another file or the file was replaced."""
        try:
            target = resolve_bundle(self.source)
            return target != self.current.path or target.stat().st_mtime != self.current.mtime
        except (BundleError, OSError):
            return False

    def close(self) -> None:
        with self._lock:
            live = self.current
            live.retired = True
            close = live.leases == 0
        if close:
            _close(live.bundle)


def _close(bundle: Any) -> None:
    closer = getattr(bundle, "close", None)
    if closer:
        closer()


class Watcher(threading.Thread):
    """Polls the bundle source every ``interval`` seconds and reloads when it changed.

    Polling (not inotify) because ``kb export`` replaces the file by rename, which every
    filesystem shows as a new mtime, and a poll of one stat() per second costs nothing.
    """

    def __init__(
        self, holder: BundleHolder, on_reload: Callable[[Live | None, Exception | None], None], interval: float = 1.0
    ):
        super().__init__(name="kb-bundle-watcher", daemon=True)
        self.holder = holder
        self.on_reload = on_reload
        self.interval = interval
        self._stop = threading.Event()
        self._failed: tuple[Path, float] | None = None

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.holder.changed():
                continue
            try:
                target = resolve_bundle(self.holder.source)
                key = (target, target.stat().st_mtime)
            except (BundleError, OSError):
                continue
            if key == self._failed:  # don't retry the same broken file every second
                continue
            try:
                live = self.holder.reload()
                self._failed = None
                self.on_reload(live, None)
            except Exception as exc:  # noqa: BLE001 - a bad bundle must never stop the server
                self._failed = key
                self.on_reload(None, exc)

    def stop(self) -> None:
        self._stop.set()
