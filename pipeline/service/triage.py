"""``POST /v1/triage``: a pasted log in, error groups linked to the bundle's atoms out.

The body is ``{"log": "<text>"}`` with its own size limit (``ops.max_triage_bytes``, default
5 MB, enforced by the Guard before the body is parsed); the answer is the shape of
``kb triage --format json``. The atom catalog is built once per loaded bundle.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TRIAGE_PATH = "/v1/triage"
_lock = threading.Lock()


class TriageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log: str = Field(description="The log text (pasted).")
    max_groups: int | None = Field(None, ge=1, le=500)


def _catalog(live: Any, gate: Any) -> Any:
    cat = live.extra.get("triage_catalog")
    if cat is None:
        from pipeline.ops import Catalog

        with _lock:
            cat = live.extra.get("triage_catalog")
            if cat is None:
                cat = live.extra["triage_catalog"] = Catalog.from_index(_GatedSearch(live.bundle, gate))
    return cat


class _GatedSearch:
    """The bundle, with its searches (the search fallback embeds) passing the service's gate."""

    def __init__(self, bundle: Any, gate: Any) -> None:
        self._bundle, self._gate = bundle, gate

    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Any]:
        with self._gate:
            return self._bundle.search(query, k=k, filters=filters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bundle, name)


def add_triage_routes(app: Any, service: Any) -> None:
    from pipeline.ops import triage_text

    @app.post(TRIAGE_PATH)
    def triage(req: TriageRequest) -> dict[str, Any]:
        from pipeline.service.core import ApiError

        if not req.log.strip():
            raise ApiError(422, "'log' is empty.", "invalid_request_error")
        with service.holder.lease() as live:
            result = triage_text(req.log, _catalog(live, service.gate))
        if service.gaps is not None:
            service.gaps.note_uncovered(result)
        return result.to_dict(max_groups=req.max_groups or service.settings.ops.max_groups)
