"""The core endpoints: health, atoms, search, ask, metrics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.answer import hit_dict
from pipeline.service.core import ApiError, Service, bundle_info, jsonable


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = Field(10, ge=1, le=100)
    filters: dict[str, Any] | None = None


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    k: int = Field(5, ge=1, le=50)


def add_core_routes(app: Any, service: Service) -> None:
    from fastapi.responses import JSONResponse, Response

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with service.holder.lease() as live:
            return {"status": "ok", "bundle": bundle_info(live), "llm": service.llm is not None}

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
        return jsonable(service.ask(req.question, k=req.k).to_dict())

    @app.get("/metrics")
    def prometheus() -> Any:
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)
