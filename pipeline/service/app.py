"""The FastAPI app over a loaded index (bundle file or Postgres): search, cited answers, atoms, metrics, reload.

``create_app(bundle_path, settings)`` loads and validates the bundle at once (a bad bundle raises
``BundleError`` before anything listens). Handlers are plain functions: FastAPI runs them in its
thread pool, and each one leases the current bundle so a reload never pulls it from under them.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.answer import llm_configured
from pipeline.answer.answerability import warm as warm_signals
from pipeline.answer.calibrate import calibrate
from pipeline.answer.index import TermStats
from pipeline.config import Settings, secret
from pipeline.service.admin import add_admin_routes, reload_in_background
from pipeline.service.chat_page import add_chat_page_routes
from pipeline.service.core import PerThreadLlm, SerialLlm, Service
from pipeline.service.encoder import load_serving_bundle
from pipeline.service.errors import add_error_handlers
from pipeline.service.metrics import Metrics
from pipeline.service.openai_compat import add_chat_routes
from pipeline.service.reload import BundleHolder, Watcher, source_version
from pipeline.service.routes import add_core_routes

__all__ = ["create_app", "reload_in_background"]


def create_app(
    bundle_path: Path | str,
    settings: Settings,
    *,
    llm: Any | None = None,
    watch: bool = False,
    watch_interval: float = 1.0,
    loader: Any | None = None,
    embedder: Any | None = None,
    gap_log: Any | None = None,
    mcp: bool = False,
    workspace: Any | None = None,
    background_load: bool = False,
    fanout: Any | None = None,
) -> Any:
    """Build the app serving ``bundle_path`` (a bundle file, a folder: its newest kb-*.duckdb, or a
    ``postgresql://`` URL: the Postgres index).

    ``llm``: a client with ``.chat(messages)`` (default: one from ``settings.llm`` when configured);
    ``watch``: reload when the bundle changes; ``embedder``: reuse a loaded one (tests, benchmarks);
    ``gap_log``: a ``pipeline.index.gaps.GapLog`` to record uncertain questions in (``kb gaps``).
    ``mcp``: also serve MCP (stateless streamable HTTP) at ``/mcp``; ``workspace``: for tools that need it.
    ``background_load``: listen at once and load the bundle in a thread (``kb serve``: containers
    are live at once, ``/readyz`` turns 200 when the bundle is in; requests before get 503).
    ``fanout``: a ``pipeline.service.reload.ReloadSignal`` shared by several serving processes
    (``kb serve --workers N``): a reload asked of one reaches all.
    """
    metrics = Metrics()
    service = _build_service(
        bundle_path, settings, metrics, llm, loader, embedder, gap_log, background_load, fanout=fanout
    )
    service.workspace = workspace
    mcp_mount = None
    if mcp:
        from pipeline.service.mcp_server import HttpMount, service_contexts

        observe = metrics.observe_tool_for("mcp")
        mcp_mount = HttpMount(service_contexts(service), host=settings.serve.host, observe=observe)
    if watch or fanout is not None:
        service.watcher = Watcher(
            service.holder, service.on_reload, interval=watch_interval, fanout=fanout, files=watch
        )
    app = _fastapi(service, mcp_mount)
    _add_routes(app, service, settings, mcp_mount)
    return app


def _loader_for(settings: Settings, loader: Any | None, embedder: Any | None) -> Any:
    def _load(path: Any, previous: Any | None) -> Any:
        if loader is not None:
            return loader(path, previous)
        # the serving encoder (onnx, cached, micro-batched) and dense index: pipeline/service/encoder.py
        return load_serving_bundle(path, settings, getattr(previous, "embedder", None) or embedder)

    return _load


def _build_service(
    bundle_path: Path | str,
    settings: Settings,
    metrics: Metrics,
    llm: Any | None,
    loader: Any | None,
    embedder: Any | None,
    gap_log: Any | None,
    background_load: bool,
    *,
    fanout: Any | None = None,
) -> Service:
    """The holder (first load now or in a thread) and the Service around it."""

    def _prepare(bundle: Any) -> dict[str, Any]:
        stats = TermStats.of(bundle)  # once per loaded bundle: answerability's term statistics
        warm_signals()  # wordfreq's list is read once here, not by every first concurrent request
        return {"calibration": calibrate(bundle, settings, stats), "stats": stats}

    if llm is not None:
        llm = SerialLlm(llm)
    elif llm_configured(settings):
        llm = PerThreadLlm(settings)
    # the first background load may end before the service exists: hold its outcome until then
    handoff: dict[str, Any] = {"service": None, "pending": None}
    handoff_lock = threading.Lock()

    def _first(live: Any, exc: Exception | None) -> None:
        with handoff_lock:
            if handoff["service"] is None:
                handoff["pending"] = (live, exc)
                return
        handoff["service"].on_first_load(live, exc)

    _load = _loader_for(settings, loader, embedder)
    version = partial(source_version, schema=settings.index.schema_name)
    holder = BundleHolder(bundle_path, _load, _prepare, background=background_load, on_loaded=_first, version=version)
    from pipeline.service.gaps import GapRecorder

    gaps = GapRecorder(gap_log) if gap_log is not None else None
    service = Service(holder=holder, settings=settings, metrics=metrics, llm=llm, gaps=gaps, fanout=fanout)
    with handoff_lock:
        handoff["service"] = service
        pending = handoff["pending"]
    if pending is not None:
        service.on_first_load(*pending)
    if holder.current is not None:
        service._describe(holder.current)
    return service


def _fastapi(service: Service, mcp_mount: Any | None) -> Any:
    import contextlib
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    @asynccontextmanager
    async def lifespan(app: Any):
        if service.watcher is not None:
            service.watcher.start()
        async with mcp_mount.run() if mcp_mount is not None else contextlib.nullcontext():
            yield
        if service.watcher is not None:
            service.watcher.stop()
        if service.gaps is not None:
            service.gaps.close()
        service.holder.close()
        service.metrics.process_exit()

    app = FastAPI(
        title="kb",
        summary="Cited answers from a knowledge bundle.",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service
    return app


def _add_routes(app: Any, service: Service, settings: Settings, mcp_mount: Any | None) -> None:
    from pipeline.service.guards import Guard
    from pipeline.service.metrics import MetricsMiddleware
    from pipeline.service.triage import TRIAGE_PATH, add_triage_routes

    add_error_handlers(app)
    add_core_routes(app, service)
    add_admin_routes(app, service)
    add_chat_routes(app, service)
    add_chat_page_routes(app, service)
    if mcp_mount is not None:
        from starlette.routing import Route

        app.router.routes.append(Route("/mcp", endpoint=mcp_mount.asgi, methods=["GET", "POST", "DELETE"]))
    add_triage_routes(app, service)
    app.add_middleware(
        Guard,
        api_key=secret(settings.serve.api_key_env),
        max_body_bytes=settings.serve.max_body_bytes,
        path_limits={TRIAGE_PATH: (settings.ops.max_triage_bytes, "ops.max_triage_bytes")},
        routes=app.router.routes,  # refused requests are counted in /metrics by route
        body_timeout_s=settings.serve.body_timeout_s,
        max_header_bytes=settings.serve.max_header_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # outermost: counts 401/413 too
