"""The index being served, swapped atomically on reload without dropping in-flight requests.

Each request takes a lease on the current index (``with holder.lease() as live``). A reload
loads and validates the new index first (a bad one raises and the old one stays), then swaps
the reference under a lock; the old index is closed when its last lease ends.

The source is a bundle file, a folder of them, or a ``postgresql://`` URL. Each has a *version*
(``source_version``): a file's path and mtime, a Postgres index's bundle checksum, so a watcher
sees a new export in either. Several serving processes (``kb serve --workers N``) share one
``ReloadSignal`` file: a reload asked of one process is announced there and every other process's
watcher follows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import BundleError, KbError
from pipeline.index.bundle import newest_bundle


def _is_url(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(("postgresql://", "postgres://"))


def resolve_source(source: Path | str) -> Path | str:
    """A ``postgresql://`` URL as it is, else the bundle file (``resolve_bundle``)."""
    return source if _is_url(source) else resolve_bundle(source)


def source_version(target: Path | str, schema: str = "kb") -> Any:
    """What changes when a new bundle is exported: a file's (path, mtime), a Postgres index's checksum."""
    if _is_url(target):
        from pipeline.index.postgres import read_manifest

        return read_manifest(str(target), schema).checksum
    p = Path(target)
    return (str(p), p.stat().st_mtime)


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


class BundleLoading(BundleError):
    """The first bundle is still loading (or failed to): the service answers 503 until it is in."""

    def __init__(self, error: Exception | None) -> None:
        if error is None:
            super().__init__(
                "The bundle is still loading.", "Retry in a few seconds (GET /readyz says when it is ready)."
            )
        else:
            super().__init__(
                f"The bundle could not be loaded: {error}", "See the server log; fix the bundle and reload."
            )


@dataclass
class Live:
    """One loaded bundle and what the service derived from it."""

    bundle: Any
    path: Any  # the bundle file, or the Postgres URL (with any password)
    version: Any  # source_version(path) when it was loaded
    loaded_at: float = field(default_factory=time.time)
    leases: int = 0
    retired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # what the service derived (calibration)

    @property
    def manifest(self) -> Any:
        return self.bundle.manifest

    @property
    def label(self) -> str:
        """Where it came from, safe to show (a Postgres URL without its password)."""
        return str(getattr(self.bundle, "path", self.path)) if _is_url(self.path) else str(self.path)


class BundleHolder:
    def __init__(
        self,
        source: Path | str,
        loader: Callable[[Any, Any], Any],
        prepare: Callable[[Any], dict[str, Any]] | None = None,
        *,
        background: bool = False,
        on_loaded: Callable[[Live | None, Exception | None], None] | None = None,
        version: Callable[[Any], Any] = source_version,
    ) -> None:
        """``source``: a bundle file or a folder of them; ``loader(path, previous_bundle)``;
        ``prepare(bundle)``: derived data kept with it (computed before the swap).

        ``background``: find the file now (a missing bundle still fails at once) but load it in a
        thread, so the server listens first and ``/readyz`` says when it can answer;
        ``on_loaded(live, error)`` is called when that first load ends; ``version(target)``: what
        changes on a new export (``source_version``).
        """
        self.source: Path | str = source if _is_url(source) else Path(source)
        self._version = version
        self._loader = loader
        self._prepare = prepare
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.ready = threading.Event()
        self.load_error: Exception | None = None
        first = resolve_source(self.source)
        self.current: Live | None = None
        if not background:
            self.current = self._load(first, None)
            self.ready.set()
            return

        def load_first() -> None:
            try:
                live = self._load(first, None)
            except Exception as exc:  # noqa: BLE001 - reported by /readyz and the log, never a crash
                self.load_error = exc
                if on_loaded:
                    on_loaded(None, exc)
                return
            with self._lock:
                if self.current is None:  # a reload may have won the race
                    self.current = live
            self.ready.set()
            if on_loaded:
                on_loaded(live, None)

        threading.Thread(target=load_first, name="kb-bundle-first-load", daemon=True).start()

    def _load(self, path: Path | str, previous: Any) -> Live:
        version = self._version(path)
        bundle = self._loader(path, previous)
        extra = self._prepare(bundle) if self._prepare else {}
        if _is_url(path):  # the index's own checksum: an export between the two reads is seen next time
            version = bundle.manifest.checksum
        return Live(bundle=bundle, path=path, version=version, extra=extra)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Live]:
        with self._lock:
            live = self.current
            if live is None:
                raise BundleLoading(self.load_error)
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
            target = resolve_source(path if path else self.source)
            new = self._load(target, self.current.bundle if self.current else None)
            with self._lock:
                old, self.current = self.current, new
                close = False
                if old is not None:
                    old.retired = True
                    close = old.leases == 0
            self.ready.set()
            self.load_error = None
            if path:
                self.source = path if _is_url(path) else Path(path)
            if close and old is not None:
                _close(old.bundle)
            return new

    def changed(self) -> bool:
        """True when the source now names another file, the file was replaced, or the index re-exported."""
        try:
            target = resolve_source(self.source)
            if self.current is None:
                return self.load_error is not None  # a failed first load: try the (new) file again
            return target != self.current.path or self._version(target) != self.current.version
        except (KbError, OSError):
            return False

    def target_version(self) -> tuple[Any, Any] | None:
        """(target, version) of the source now, None when it cannot be read."""
        try:
            target = resolve_source(self.source)
            return target, self._version(target)
        except (KbError, OSError):
            return None

    def close(self) -> None:
        with self._lock:
            live = self.current
            if live is None:
                return
            live.retired = True
            close = live.leases == 0
        if close:
            _close(live.bundle)


def _close(bundle: Any) -> None:
    closer = getattr(bundle, "close", None)
    if closer:
        closer()


class ReloadSignal:
    """A small JSON file several serving processes share: the last reload asked of any of them.

    ``announce(path)`` writes a new generation (atomically: temp file + rename); each process's
    watcher compares it with the one it last followed and reloads (``path``: the new source, or
    None for the same source again).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read(self) -> tuple[int, str | None]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return int(data["generation"]), data.get("path")
        except (OSError, ValueError, KeyError, TypeError):
            return 0, None

    def announce(self, path: str | None) -> int:
        generation = time.time_ns()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"generation": generation, "path": path, "pid": os.getpid()}), encoding="utf-8")
        os.replace(tmp, self.path)
        return generation


class Watcher(threading.Thread):
    """Polls every ``interval`` seconds: the source's version (``files``: a file's mtime, a Postgres
    index's checksum) and the shared ``fanout`` signal; reloads when either changed.

    Polling (not inotify) because ``kb export`` replaces the file by rename, which every
    filesystem shows as a new mtime, and a poll of one stat() (or one small query) costs nothing.
    """

    def __init__(
        self,
        holder: BundleHolder,
        on_reload: Callable[[Live | None, Exception | None], None],
        interval: float = 1.0,
        *,
        fanout: ReloadSignal | None = None,
        files: bool = True,
    ):
        super().__init__(name="kb-bundle-watcher", daemon=True)
        self.holder = holder
        self.on_reload = on_reload
        self.interval = interval
        self.fanout = fanout
        self.files = files
        self.seen = fanout.read()[0] if fanout is not None else 0  # the generation last followed
        self._stop = threading.Event()
        self._failed: tuple[Any, Any] | None = None

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """One round: follow a newer fanout generation, else reload a changed source."""
        if self.fanout is not None:
            generation, path = self.fanout.read()
            if generation > self.seen:
                self.seen = generation
                self._reload(path)
                return
        if not self.files or not self.holder.changed():
            return
        key = self.holder.target_version()
        if key is None or key == self._failed:  # don't retry the same broken file every second
            return
        self._failed = None if self._reload(None) else key

    def _reload(self, path: str | None) -> bool:
        try:
            live = self.holder.reload(path)
        except Exception as exc:  # noqa: BLE001 - a bad bundle must never stop the server
            self.on_reload(None, exc)
            return False
        self.on_reload(live, None)
        return True

    def stop(self) -> None:
        self._stop.set()
