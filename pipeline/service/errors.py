"""One JSON error shape everywhere: kb's own errors, invalid requests, unknown routes."""

from __future__ import annotations

from typing import Any

from fastapi import Request  # imported only to serve (kb serve, tests), never by kb --help

from pipeline.errors import BackendError, KbError, MissingDependencyError, MissingModelError
from pipeline.service.core import ApiError
from pipeline.service.guards import error_body


def add_error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

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
        if exc.status_code == 405 and message == "Method Not Allowed":
            allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
            message = f"Method {request.method[:20]} is not allowed on {request.url.path[:200]}; allowed: {allowed}."
        return _json_error(exc.status_code, message, type_, getattr(exc, "headers", None))

    @app.exception_handler(KbError)
    async def _kb_error(request: Request, exc: KbError) -> Any:
        from pipeline.service.reload import BundleLoading

        if isinstance(exc, BundleLoading):  # the server listens before its first bundle is in
            message = exc.message.rstrip(".") + "." + (f" {exc.hint}" if exc.hint else "")
            return _json_error(503, message, "not_ready", {"Retry-After": "2"})
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
