"""``kb serve`` (the HTTP chat endpoint) and ``kb ask`` (one cited answer in the terminal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pipeline.cli._common import err_console, limit_native_threads, state
from pipeline.cli.root import app
from pipeline.config import Settings
from pipeline.errors import BundleError, KbError


def _settings_and_bundle(
    ctx: typer.Context, bundle: Path | None, index: str | None = None, *, use_index_url: bool = False, **flags: Any
) -> tuple[Settings, Any, Any]:
    """Settings of the workspace (when there is one), the bundle file (the given one or dist/'s
    newest) and its source (what a reload looks at again: the given file or folder, or dist/).

    ``index`` (``--index``): a ``postgresql://`` URL (no password: PGPASSWORD or KB_INDEX_URL) or a
    bundle path; with ``use_index_url`` (kb serve) and neither flag, ``index.url`` (KB_INDEX_URL) picks Postgres.
    """
    from pipeline.index.postgres import is_postgres_url, refuse_password_flag
    from pipeline.service.reload import resolve_bundle

    if index is not None and is_postgres_url(index):
        refuse_password_flag(index)
    elif index is not None:
        bundle = bundle or Path(index)
    st = state(ctx)
    try:
        ws_root = st.workspace.root
    except KbError:
        ws_root = None
    url = index if is_postgres_url(index) else None
    if url is None and bundle is None and use_index_url:
        url = Settings.load(ws_root, **flags).index.url
    if url is not None:
        settings = Settings.load(ws_root, **flags)
        limit_native_threads(settings.threads)
        return settings, url, url
    try:
        ws = st.workspace
    except KbError:
        if bundle is None:
            raise BundleError(
                "No --bundle given and no workspace here to find dist/kb-*.duckdb in.",
                "Pass --bundle PATH, or run from a workspace after 'kb export'.",
            ) from None
        settings = Settings.load(None, **flags)
        limit_native_threads(settings.threads)
        return settings, resolve_bundle(bundle), bundle
    settings = Settings.load(ws.root, **flags)
    limit_native_threads(settings.threads)
    source = bundle if bundle is not None else ws.dist_dir
    return settings, resolve_bundle(source), source


@app.command()
def serve(
    ctx: typer.Context,
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
    host: str | None = typer.Option(None, help="Interface to listen on (serve.host, default 127.0.0.1)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (serve.port, default 8000)."),
    watch: bool = typer.Option(False, "--watch", help="Reload when the bundle file (or the folder's newest) changes."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    mcp: bool = typer.Option(
        False, "--mcp", help="Also serve MCP (stateless streamable HTTP) at /mcp, behind the same auth."
    ),
    index: str | None = typer.Option(
        None,
        "--index",
        metavar="URL",
        help="Serve the Postgres index at this postgresql:// URL (password: PGPASSWORD or KB_INDEX_URL), or a bundle.",
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Serving processes sharing the port, the bundle and /metrics."
    ),
) -> None:
    """Serve the bundle (or the Postgres index) over HTTP: search, cited answers, OpenAI-compatible chat, metrics.

    Reload a new bundle without dropping requests: POST /admin/reload, send SIGHUP, or --watch.
    """
    import signal

    from pipeline.service.app import create_app, reload_in_background
    from pipeline.service.server import log_file_path, require_uvicorn, run_server

    flags = {"serve.host": host, "serve.port": port}
    settings, _, source = _settings_and_bundle(ctx, bundle, index, use_index_url=True, **flags)
    if not 1 <= settings.serve.port <= 65535:
        from pipeline.errors import ConfigError

        raise ConfigError(
            f"serve.port {settings.serve.port} is not a TCP port", "Set serve.port (or --port) to 1-65535."
        )
    require_uvicorn()
    try:
        ws = state(ctx).workspace
    except KbError:
        ws = None
    log_file = log_file_path(settings.serve.log_file, ws.root if ws is not None else None)
    if workers > 1:
        _serve_workers(
            settings, source, ws, workers, flags, watch=watch, mcp=mcp, log_level=log_level, log_file=log_file
        )
        return
    web = create_app(
        source,
        settings,
        watch=watch,
        gap_log=_gap_log(ctx, settings, source),
        mcp=mcp,
        workspace=ws,
        background_load=settings.serve.background_load,
    )
    live = web.state.service.holder.current
    url = f"http://{settings.serve.host}:{settings.serve.port}"
    if live is None:  # serve.background_load: the bundle loads while the server already listens
        err_console.print(f"Listening on {url}; loading {source} (GET /readyz says when it is in)", markup=False)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: reload_in_background(web))
        run_server(web, settings.serve.host, settings.serve.port, log_level, log_file=log_file)
        return
    m = live.manifest
    err_console.print(
        f"Serving {live.label} ({m.counts.get('atoms', '?')} atoms, {m.embedding.model}) on {url}\n"
        f'  POST {url}/v1/ask {{"question": ...}} · POST /v1/search · POST /v1/chat/completions · GET /metrics'
        f"{' · MCP ' + url + '/mcp' if mcp else ''}\n"
        f"  uncertain below {live.extra['calibration'].threshold:.3f} ({live.extra['calibration'].source})\n"
        f"  answers: {'LLM-grounded (' + settings.llm.model + ')' if web.state.service.llm else 'extractive (no LLM configured)'}"
        f" · auth: {'bearer key from $' + settings.serve.api_key_env if _has_key(settings) else 'open'}",
        markup=False,
    )
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: reload_in_background(web))
    run_server(web, settings.serve.host, settings.serve.port, log_level, log_file=log_file)


def _serve_workers(settings: Settings, source: Any, ws: Any, workers: int, flags: dict[str, Any], **opts: Any) -> None:
    """``--workers N``: uvicorn's supervisor starts N processes, each builds the app itself."""
    import json
    import os

    from pipeline.index.postgres import has_password, is_postgres_url
    from pipeline.service.server import WORKER_ENV, run_server, worker_app_path, worker_run_dir

    spec = {
        "source": None if is_postgres_url(source) else str(source),  # a URL stays in KB_INDEX_URL / --index
        "index": str(source) if is_postgres_url(source) and not has_password(str(source)) else None,
        "workspace": str(ws.root) if ws is not None else None,
        "flags": {k: v for k, v in flags.items() if v is not None},
        "watch": opts["watch"],
        "mcp": opts["mcp"],
        "background_load": settings.serve.background_load,
    }
    with worker_run_dir() as run_dir:
        os.environ[WORKER_ENV] = json.dumps(spec | {"run_dir": str(run_dir)})
        url = f"http://{settings.serve.host}:{settings.serve.port}"
        err_console.print(
            f"Serving {source if spec['source'] else 'the Postgres index'} on {url} with {workers} workers",
            markup=False,
        )
        run_server(
            worker_app_path(),
            settings.serve.host,
            settings.serve.port,
            opts["log_level"],
            workers=workers,
            log_file=opts["log_file"],
        )


def _gap_log(ctx: typer.Context, settings: Settings, source: Any = None) -> Any:
    """The workspace's gap log for uncertain questions (none outside a workspace or with gaps.record off)."""
    if not settings.gaps.record:
        return None
    try:
        ws = state(ctx).workspace
    except KbError:
        return None
    from pipeline.index.gapstore import open_gap_log

    return open_gap_log(ws.state_dir, settings, source if isinstance(source, str) else None)


def _has_key(settings: Settings) -> bool:
    from pipeline.config import secret

    return secret(settings.serve.api_key_env) is not None
