"""The FastAPI app over a loaded bundle: search, cited answers, atoms, metrics, reload.

``create_app(bundle_path, settings)`` loads and validates the bundle at once (a bad bundle raises
``BundleError`` before anything listens). Handlers are plain functions: FastAPI runs them in its
thread pool, and each one leases the current bundle so a reload never pulls it from under them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.answer import llm_configured
from pipeline.answer.bundle import open_bundle
from pipeline.answer.uncertain import calibrate
from pipeline.config import Settings, secret
from pipeline.service.admin import add_admin_routes, reload_in_background
from pipeline.service.core import PerThreadLlm, SerialLlm, Service
from pipeline.service.errors import add_error_handlers
from pipeline.service.metrics import Metrics
from pipeline.service.openai_compat import add_chat_routes
from pipeline.service.reload import BundleHolder, Watcher
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
) -> Any:
    """Build the app serving ``bundle_path`` (a bundle file, or a folder: its newest kb-*.duckdb).

    ``llm``: a client with ``.chat(messages)`` (default: one from ``settings.llm`` when configured);
    ``watch``: reload when the bundle changes; ``embedder``: reuse a loaded one (tests, benchmarks).
    """
    from fastapi import FastAPI

    from pipeline.service.guards import Guard
    from pipeline.service.metrics import MetricsMiddleware

    metrics = Metrics()

    def _load(path: Path, previous: Any | None) -> Any:
        if loader is not None:
            return loader(path, previous)
        return open_bundle(path, settings, getattr(previous, "embedder", None) or embedder)

    def _prepare(bundle: Any) -> dict[str, Any]:
        return {"calibration": calibrate(bundle, settings)}

    holder = BundleHolder(bundle_path, _load, _prepare)
    if llm is not None:
        llm = SerialLlm(llm)
    elif llm_configured(settings):
        llm = PerThreadLlm(settings)
    service = Service(holder=holder, settings=settings, metrics=metrics, llm=llm)
    service._describe(holder.current)
    if watch:
        service.watcher = Watcher(holder, service.on_reload, interval=watch_interval)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):
        if service.watcher is not None:
            service.watcher.start()
        yield
        if service.watcher is not None:
            service.watcher.stop()
        holder.close()

    app = FastAPI(
        title="kb",
        summary="Cited answers from a knowledge bundle.",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = service

    add_error_handlers(app)
    add_core_routes(app, service)
    add_admin_routes(app, service)
    add_chat_routes(app, service)

    app.add_middleware(Guard, api_key=secret(settings.serve.api_key_env), max_body_bytes=settings.serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts 401/413 too
    return app
