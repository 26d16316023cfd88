"""Running the app with uvicorn (the only importer of uvicorn)."""

from __future__ import annotations

from typing import Any

from pipeline.errors import KbError, MissingDependencyError


def require_uvicorn() -> None:
    """Fail before the bundle is loaded, with the fix, when the serve extra is missing."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("uvicorn", "serve", "kb serve") from None


def run_server(web: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``web`` until interrupted; a server that cannot start is a KbError naming the address."""
    import uvicorn

    from pipeline.service.http_limits import uvicorn_options  # slow/stalled clients: deadlines per request phase

    config = uvicorn.Config(web, host=host, port=port, log_level=log_level, access_log=False, **uvicorn_options(web))
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start (e.g. the port is taken)
        if exc.code in (0, None):
            return
        raise KbError(
            f"Could not serve on {host}:{port} (uvicorn: startup failed, see above).",
            "Is another server on that port, or the host not an address of this machine? Pass --port/--host or set serve.port/serve.host.",
        ) from None
