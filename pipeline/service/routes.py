"""The core endpoints: health, atoms, search, ask, metrics."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.answer import hit_dict
from pipeline.service.core import ApiError, Service, bundle_info, jsonable


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = Field(10, ge=1, le=100)
    filters: dict[str, Any] | None = None


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. an assistant turn's "citations"
    role: str
    content: str | list[dict[str, Any]] | None = None


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    k: int = Field(5, ge=1, le=50)
    history: list[HistoryTurn] = Field(
        default_factory=list, max_length=50, description="Earlier turns: [{role, content}], oldest first."
    )


def add_core_routes(app: Any, service: Service) -> None:
    from fastapi.responses import JSONResponse, Response

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers (the bundle may still be loading)."""
        if service.holder.current is None:
            state = "failed" if service.holder.load_error is not None else "loading"
            return {"status": state, "bundle": None, "llm": service.llm is not None}
        with service.holder.lease() as live:
            from pipeline.service.encoder import encoder_stats

            encoder = encoder_stats(getattr(live.bundle, "embedder", None))
            info = bundle_info(live)
            return {
                "status": "ok",
                "index": {"kind": info["kind"], "checksum": info["checksum"]},
                "bundle": info,
                "llm": service.llm is not None,
                "encoder": encoder,
                "pid": os.getpid(),
            }

    @app.api_route("/readyz", methods=["GET", "HEAD"])
    def readyz() -> Any:
        """Readiness: 200 once a bundle is loaded, 503 before (and when the first load failed)."""
        live = service.holder.current
        if live is None:
            error = service.holder.load_error
            body = {"ready": False, "reason": f"bundle could not be loaded: {error}" if error else "bundle loading"}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
        return {"ready": True, "checksum": live.manifest.checksum}

    @app.get("/v1/atoms/{atom_id}")
    def get_atom(atom_id: str) -> Any:
        with service.holder.lease() as live:
            atom = live.bundle.atom(atom_id)
        if atom is None:
            raise ApiError(404, f"No atom '{atom_id}' in this bundle.", "not_found")
        return JSONResponse(jsonable(atom))

    @app.post("/v1/search")
    def search(req: SearchRequest) -> dict[str, Any]:
        service.check_text(req.query, "query")
        with service.holder.lease() as live:
            hits = service.search(live, req.query, req.k, req.filters)
        results = [hit_dict(h) for h in hits]
        if results:
            service.metrics.search_score.observe(results[0]["score"])
        return {"results": jsonable(results)}

    @app.post("/v1/ask")
    def ask(req: AskRequest) -> dict[str, Any]:
        return jsonable(service.ask(req.question, k=req.k, history=req.history).to_dict())

    @app.get("/metrics")
    def prometheus() -> Any:
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)
