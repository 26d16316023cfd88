"""Running the app with uvicorn (the only importer of uvicorn): one process, or ``--workers N``.

With several workers uvicorn starts N processes that share the listening socket; each builds its
own app through ``worker_app`` (a factory uvicorn imports by name) from the ``KBSERVE_WORKER_SPEC``
JSON that ``kb serve`` puts in the environment, loads the same bundle file read-only (or the same
Postgres index), writes its metrics into the shared ``PROMETHEUS_MULTIPROC_DIR`` and follows the
shared reload signal (``pipeline.service.reload.ReloadSignal``). ``run_dir`` is kb's own temp
folder for both; ``kb serve`` removes it when the server stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import KbError, MissingDependencyError
from pipeline.service.worker_spec import WORKER_ENV, worker_serve_settings


def require_uvicorn() -> None:
    """Fail before the bundle is loaded, with the fix, when the serve extra is missing."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("uvicorn", "serve", "kb serve") from None


def log_file_path(setting: str, workspace_root: Path | None) -> Path | None:
    """Where ``kb serve`` appends its log: ``serve.log_file`` (auto = the workspace's .kb/logs/serve.log)."""
    if setting.strip().lower() in ("off", "none", "false", ""):
        return None
    if setting.strip().lower() == "auto":  # best effort: a read-only workspace (a container's) serves without it
        if workspace_root is None:
            return None
        auto = workspace_root / ".kb" / "logs" / "serve.log"
        try:
            auto.parent.mkdir(parents=True, exist_ok=True)
            with auto.open("a", encoding="utf-8"):
                pass
        except OSError:
            return None
        return auto
    path = Path(setting).expanduser()
    return path if path.is_absolute() or workspace_root is None else workspace_root / path


def log_config(log_file: Path) -> dict[str, Any]:
    """uvicorn's own logging config plus a rotated file for uvicorn's and kb's server loggers.

    A dict (not a handler added afterwards): uvicorn applies its config at start-up and in every
    worker process, replacing handlers set on its loggers before.
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise KbError(
            f"kb serve cannot write its log file {log_file}: {exc.strerror or exc}",
            "Free space or fix the folder's permissions, or set serve.log_file to another path (or off).",
        ) from None
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["file"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["file"] = {
        "class": "logging.handlers.RotatingFileHandler",
        "filename": str(log_file),
        "maxBytes": 10 * 1024 * 1024,
        "backupCount": 3,
        "encoding": "utf-8",
        "formatter": "file",
    }
    for name in ("uvicorn", "uvicorn.access"):
        config["loggers"][name]["handlers"] = [*config["loggers"][name]["handlers"], "file"]
    config["loggers"]["kb"] = {"handlers": ["file"], "level": "INFO", "propagate": True}
    return config


def run_server(
    web: Any, host: str, port: int, log_level: str = "info", workers: int = 1, log_file: Path | None = None
) -> None:
    """Serve ``web`` until interrupted; a server that cannot start is a KbError naming the address.

    ``workers`` > 1: ``web`` is the import string of an app factory (``worker_app``). ``log_file``:
    uvicorn's and kb's server messages are also appended there (rotated).
    """
    import uvicorn

    from pipeline.service.http_limits import uvicorn_options  # slow/stalled clients: deadlines per request phase

    if workers > 1:
        from pipeline.service.worker_protocol import WorkerH11Protocol

        serve = worker_serve_settings()
        extra: dict[str, Any] = {"factory": True, "workers": workers, "http": WorkerH11Protocol}
        extra["h11_max_incomplete_event_size"] = serve.max_header_bytes
    else:
        extra = uvicorn_options(web)
    if log_file is not None:
        extra["log_config"] = log_config(log_file)
    config = uvicorn.Config(web, host=host, port=port, log_level=log_level, access_log=False, **extra)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            with worker_thread_env(workers):
                _run_workers(config)
        else:
            server.run()
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start (e.g. the port is taken)
        if exc.code in (0, None):
            return
        raise KbError(
            f"Could not serve on {host}:{port} (uvicorn: startup failed, see above).",
            "Is another server on that port, or the host not an address of this machine? Pass --port/--host or set serve.port/serve.host.",
        ) from None


_POOL_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def worker_thread_env(workers: int) -> Iterator[dict[str, str]]:
    """The native thread pools (OpenMP, OpenBLAS, MKL: numpy's vector scans) of N serving workers share the
    cores: each worker gets cores // N threads unless the user set the variable. Without this every worker
    starts one spinning pool thread per core, N x cores threads on the same cores."""
    share = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    set_here = {name: share for name in _POOL_ENV if not os.environ.get(name)}
    os.environ.update(set_here)
    try:
        yield set_here
    finally:
        for name in set_here:
            os.environ.pop(name, None)


def _run_workers(config: Any) -> None:
    """uvicorn's own supervisor: N processes on one socket, each importing the app factory."""
    from uvicorn.supervisors import Multiprocess

    try:
        sock = config.bind_socket()
    except SystemExit:
        raise
    except OSError:
        raise SystemExit(3) from None
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()


@contextlib.contextmanager
def worker_run_dir() -> Iterator[Path]:
    """kb's own folder for the workers' shared metrics and reload signal, removed afterwards.

    ``PROMETHEUS_MULTIPROC_DIR`` is set here, before any worker starts (prometheus-client reads it
    at import); the previous value is restored when the server stops.
    """
    root = Path(tempfile.mkdtemp(prefix="kb-serve-"))
    (root / "metrics").mkdir()
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(root / "metrics")
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = before
        shutil.rmtree(root, ignore_errors=True)  # only the folder made above


def worker_app_path() -> str:
    return f"{__name__}:worker_app"


def worker_app() -> Any:
    """The app of one serving worker, built from ``KBSERVE_WORKER_SPEC`` (set by ``kb serve --workers``)."""
    from pipeline.config import Settings
    from pipeline.service.app import create_app
    from pipeline.service.reload import ReloadSignal

    spec = json.loads(os.environ[WORKER_ENV])
    root = spec.get("workspace")
    settings = Settings.load(Path(root) if root else None, **spec.get("flags", {}))
    source = spec.get("source") or spec.get("index") or settings.index.url
    if source is None:
        raise KbError("kb serve --workers: the worker got no bundle or index to serve.", "This is a bug in kb serve.")
    ws = gap_log = None
    if root:
        from pipeline.workspace import Workspace

        ws = Workspace.at(Path(root))
        if settings.gaps.record:
            from pipeline.index.gapstore import open_gap_log

            gap_log = open_gap_log(ws.state_dir, settings, source if isinstance(source, str) else None)
    web = create_app(
        source,
        settings,
        watch=bool(spec.get("watch")),
        watch_interval=float(spec.get("watch_interval", 1.0)),
        gap_log=gap_log,
        mcp=bool(spec.get("mcp")),
        workspace=ws,
        background_load=bool(spec.get("background_load")),
        fanout=ReloadSignal(Path(spec["run_dir"]) / "reload.json"),
    )
    from pipeline.service.worker_protocol import count_rejections_of

    count_rejections_of(web)  # 400/408/431/503 refused before any route, in this worker's metrics
    return web
