"""Admin endpoints and signals: reload the bundle (from this machine, or with the bearer key)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request  # imported only to serve (kb serve, tests), never by kb --help
from pydantic import BaseModel, ConfigDict, Field

from pipeline.config import secret
from pipeline.errors import KbError
from pipeline.service.core import ApiError, Service, bundle_info


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="Another bundle file or folder; default: the one being served.")


def add_admin_routes(app: Any, service: Service) -> None:
    @app.post("/admin/reload")
    def admin_reload(request: Request, req: ReloadRequest | None = None) -> dict[str, Any]:
        client = request.client.host if request.client else ""
        if not secret(service.settings.serve.api_key_env) and client not in ("127.0.0.1", "::1", "localhost"):
            raise ApiError(
                403,
                f"Without a bearer key, /admin/reload is only accepted from this machine (not {client}).",
                "forbidden",
            )
        try:
            live = service.reload(req.path if req else None)
        except KbError as exc:
            raise ApiError(
                409,
                f"New bundle refused, still serving {getattr(service.holder.current, 'label', 'nothing yet')}: {exc.message}",
                "bundle_refused",
            )
        except Exception as exc:  # noqa: BLE001 - refused, the old bundle stays
            raise ApiError(
                409,
                f"New bundle refused, still serving {getattr(service.holder.current, 'label', 'nothing yet')}: {exc}",
                "bundle_refused",
            )
        return {"status": "reloaded", "bundle": bundle_info(live)}


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
