"""The FastAPI app over a loaded bundle: search, cited answers, atoms, metrics, reload.

``create_app(bundle_path, settings)`` loads and validates the bundle at once (a bad bundle raises
``BundleError`` before anything listens). Handlers are plain functions: FastAPI runs them in its
thread pool, and each one leases the current bundle so a reload never pulls it from under them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Request  # this module is imported only to serve (kb serve, tests), never by kb --help
from pydantic import BaseModel, ConfigDict, Field

from pipeline import telemetry
from pipeline.config import Settings, secret
from pipeline.errors import BackendError, ConfigError, KbError, MissingDependencyError, MissingModelError
from pipeline.service.answering import answer, hit_dict, llm_configured
from pipeline.service.guards import error_body
from pipeline.service.metrics import Metrics
from pipeline.service.reload import BundleHolder, Live, Watcher

log = logging.getLogger("kb.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = Field(10, ge=1, le=100)
    filters: dict[str, Any] | None = None


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    k: int = Field(5, ge=1, le=50)


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="Another bundle file or folder; default: the one being served.")


@dataclass
class Service:
    """What the handlers share."""

    holder: BundleHolder
    settings: Settings
    metrics: Metrics
    llm: Any | None
    watcher: Watcher | None = None
    gate: Any = None  # bounds concurrent retrievals (embedding is CPU-bound): FIFO queue, not thrash

    def __post_init__(self) -> None:
        if self.gate is None:
            # One retrieval per model thread (settings.threads): with threads=1, one query embeds
            # at a time while the other core parses and serialises. Measured with 50 clients
            # (bench/service_bench.py): p99 1.07 s gated vs 2.31 s ungated, same throughput.
            self.gate = threading.BoundedSemaphore(max(1, self.settings.threads))

    def search(self, live: Live, query: str, k: int, filters: dict | None = None) -> list[Any]:
        with self.gate:
            return live.bundle.search(query, k=k, filters=filters)

    def check_text(self, text: str, field: str) -> str:
        limit = self.settings.serve.max_query_chars
        if len(text) > limit:
            raise ApiError(
                422,
                f"'{field}' is {len(text)} characters; the limit is {limit} (serve.max_query_chars).",
                "query_too_long",
            )
        if not text.strip():
            raise ApiError(422, f"'{field}' is empty.", "invalid_request_error")
        return text

    def ask(self, question: str, k: int = 5) -> Any:
        self.check_text(question, "question")
        with self.holder.lease() as live:
            try:
                threshold = live.extra["calibration"].threshold if "calibration" in live.extra else None
                with telemetry.span("answer", **{"kb.bundle.checksum": live.manifest.checksum}) as span:
                    result = answer(
                        _Gated(live.bundle, self.gate), question, self.settings, llm=self.llm, k=k, threshold=threshold
                    )
                    span.set_attributes(telemetry.answer_attributes(result))
            except (BackendError, ConfigError, MissingDependencyError) as exc:
                raise ApiError(502, f"The LLM failed: {exc.message}", "llm_error") from None
        price = self.settings.llm
        cost = (result.tokens_in * price.price_in_per_1m + result.tokens_out * price.price_out_per_1m) / 1e6
        self.metrics.observe_answer(
            result.mode, result.uncertain, result.evidence, result.tokens_in, result.tokens_out, cost
        )
        return result

    def on_reload(self, live: Live | None, exc: Exception | None) -> None:
        if live is not None:
            self.metrics.reloads.labels(result="ok").inc()
            self._describe(live)
            log.warning("kb serve: now serving %s", live.path)
        else:
            self.metrics.reloads.labels(result="refused").inc()
            log.warning("kb serve: new bundle refused, still serving %s: %s", self.holder.current.path, exc)

    def reload(self, path: str | None = None) -> Live:
        try:
            live = self.holder.reload(path)
        except Exception as exc:
            self.on_reload(None, exc)
            raise
        self.on_reload(live, None)
        return live

    def _describe(self, live: Live) -> None:
        m = live.manifest
        self.metrics.set_bundle(str(live.path), m.checksum, m.embedding.model)


class _Gated:
    """A bundle whose searches pass the service's gate (the LLM call after them does not)."""

    def __init__(self, bundle: Any, gate: Any) -> None:
        self._bundle, self._gate = bundle, gate

    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Any]:
        with self._gate:
            return self._bundle.search(query, k=k, filters=filters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bundle, name)


class SerialLlm:
    """A given LLM client, one request at a time (an LlmClient keeps per-call state)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        with self._lock:
            return self.client.chat(messages, **kwargs)


class PerThreadLlm:
    """One LlmClient per worker thread, so concurrent answers don't share per-call state."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.backends.llm import make_client

        self.settings = settings
        self._local = threading.local()
        self._local.client = make_client(settings)  # fail at startup, with the fix, if misconfigured

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from pipeline.backends.llm import make_client

            client = self._local.client = make_client(self.settings)
        return client.chat(messages, **kwargs)


def load_bundle(path: Path, embedder: Any | None = None, settings: Settings | None = None) -> Any:
    """Load and validate a bundle, reusing ``embedder`` (already in memory) when it is the bundle's model."""
    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import Bundle, read_manifest

    if embedder is not None:
        embedding = read_manifest(path).embedding
        if getattr(embedder, "model_id", None) == embedding.model and getattr(embedder, "dim", None) == embedding.dim:
            return Bundle.load(path, embedder)
    return Bundle.load(path, partial(embedder_for_manifest, settings=settings))


def bundle_info(live: Live) -> dict[str, Any]:
    m = live.manifest
    return {
        "path": str(live.path),
        "checksum": m.checksum,
        "created": m.created.isoformat() if hasattr(m.created, "isoformat") else str(m.created),
        "kb_version": m.kb_version,
        "embedding": {"model": m.embedding.model, "dim": m.embedding.dim},
        "counts": dict(m.counts),
        "statuses": list(m.statuses),
        "uncertain_below": live.extra["calibration"].to_dict() if "calibration" in live.extra else None,
    }


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
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from pipeline.service.guards import Guard
    from pipeline.service.metrics import MetricsMiddleware
    from pipeline.service.openai_compat import add_chat_routes

    metrics = Metrics()

    def _load(path: Path, previous: Any | None) -> Any:
        if loader is not None:
            return loader(path, previous)
        return load_bundle(path, getattr(previous, "embedder", None) or embedder, settings)

    def _prepare(bundle: Any) -> dict[str, Any]:
        from pipeline.service.calibration import calibrate

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

    # -- errors: one JSON shape everywhere ----------------------------------------------------

    def _json_error(status: int, message: str, type_: str, headers: dict | None = None) -> Any:
        return Response(
            error_body(status, message, type_), status_code=status, media_type="application/json", headers=headers
        )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Any:
        return _json_error(exc.status, exc.message, exc.type)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        errors = exc.errors()
        for err in errors:
            if err.get("type") == "json_invalid":
                ctx = err.get("ctx") or {}
                where = f" at position {err['loc'][1]}" if len(err.get("loc", ())) > 1 else ""
                return _json_error(
                    400, f"Malformed JSON body{where}: {ctx.get('error', 'invalid JSON')}.", "invalid_json"
                )
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            return _json_error(
                415 if content_type else 422,
                f"Send the body as JSON with 'Content-Type: application/json' (got '{content_type or 'none'}').",
                "invalid_content_type",
            )
        parts = []
        for err in errors[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"'{loc}': {err.get('msg')}")
        return _json_error(422, "Invalid request: " + "; ".join(parts) + ".", "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        type_ = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}."
        return _json_error(exc.status_code, message, type_, getattr(exc, "headers", None))

    @app.exception_handler(KbError)
    async def _kb_error(request: Request, exc: KbError) -> Any:
        status = (
            502
            if isinstance(exc, BackendError)
            else 500
            if isinstance(exc, (MissingModelError, MissingDependencyError))
            else 422
        )
        message = exc.message.rstrip(".") + "." + (f" {exc.hint}" if exc.hint else "")
        type_ = {422: "invalid_request_error", 502: "backend_error"}.get(status, "server_error")
        return _json_error(status, message, type_)

    # -- endpoints ----------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with holder.lease() as live:
            return {"status": "ok", "bundle": bundle_info(live), "llm": service.llm is not None}

    @app.get("/v1/atoms/{atom_id}")
    def get_atom(atom_id: str) -> Any:
        with holder.lease() as live:
            atom = live.bundle.atom(atom_id)
        if atom is None:
            raise ApiError(404, f"No atom '{atom_id}' in this bundle.", "not_found")
        return JSONResponse(jsonable(atom))

    @app.post("/v1/search")
    def search(req: SearchRequest) -> dict[str, Any]:
        service.check_text(req.query, "query")
        with holder.lease() as live:
            hits = service.search(live, req.query, req.k, req.filters)
        results = [hit_dict(h) for h in hits]
        if results:
            metrics.search_score.observe(results[0]["score"])
        return {"results": jsonable(results)}

    @app.post("/v1/ask")
    def ask(req: AskRequest) -> dict[str, Any]:
        return jsonable(service.ask(req.question, k=req.k).to_dict())

    @app.get("/metrics")
    def prometheus() -> Any:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post("/admin/reload")
    def admin_reload(request: Request, req: ReloadRequest | None = None) -> dict[str, Any]:
        client = request.client.host if request.client else ""
        if not secret(settings.serve.api_key_env) and client not in ("127.0.0.1", "::1", "localhost"):
            raise ApiError(
                403,
                f"Without a bearer key, /admin/reload is only accepted from this machine (not {client}).",
                "forbidden",
            )
        try:
            live = service.reload(req.path if req else None)
        except KbError as exc:
            raise ApiError(
                409, f"New bundle refused, still serving {holder.current.path}: {exc.message}", "bundle_refused"
            )
        except Exception as exc:  # noqa: BLE001 - refused, the old bundle stays
            raise ApiError(409, f"New bundle refused, still serving {holder.current.path}: {exc}", "bundle_refused")
        return {"status": "reloaded", "bundle": bundle_info(live)}

    add_chat_routes(app, service)

    app.add_middleware(Guard, api_key=secret(settings.serve.api_key_env), max_body_bytes=settings.serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts 401/413 too
    return app


def reload_in_background(app: Any) -> threading.Thread:
    """For SIGHUP: reload off the event loop; a failure is logged and the old bundle stays."""

    def run() -> None:
        try:
            app.state.service.reload()
        except Exception:  # noqa: BLE001 - logged by on_reload
            pass

    thread = threading.Thread(target=run, name="kb-reload", daemon=True)
    thread.start()
    return thread


def jsonable(value: Any) -> Any:
    """Dates and numpy scalars in bundle rows become JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    return str(value)
