"""Auth and request-size limits, as one pure ASGI middleware that runs before any body parsing.

Errors use the OpenAI error shape (``{"error": {"message", "type", "code"}}``) on every endpoint,
so the official client and curl users see the same clear message.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

OPEN_PATHS = frozenset({"/healthz"})


def error_body(status: int, message: str, type_: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": code or type_, "status": status}}).encode()


async def send_error(send: Any, status: int, message: str, type_: str, headers: list | None = None) -> None:
    body = error_body(status, message, type_)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Bearer key (when one is configured) and the request body size limit."""

    def __init__(
        self,
        app: Any,
        *,
        api_key: str | None,
        max_body_bytes: int,
        path_limits: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        # a route with its own size limit (POST /v1/triage takes whole logs): path -> (bytes, setting name)
        self.path_limits = path_limits or {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.api_key and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            scheme, _, token = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
                message = "Missing bearer key." if not given else "Invalid bearer key."
                await send_error(
                    send,
                    401,
                    f"{message} Send 'Authorization: Bearer <key>' with the key from the server's serve.api_key_env variable.",
                    "authentication_error",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        limit, setting = self.path_limits.get(scope["path"], (self.max_body_bytes, "serve.max_body_bytes"))
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, "Invalid Content-Length header.", "invalid_request_error")
                return
            if declared > limit:
                await self._too_large(send, declared, limit=limit, setting=setting)
                return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        # Read the body (a chunked one has no Content-Length), count it, then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, size, at_least=True, limit=limit, setting=setting)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(
        self,
        send: Any,
        size: int,
        at_least: bool = False,
        limit: int | None = None,
        setting: str = "serve.max_body_bytes",
    ) -> None:
        what = f"at least {size}" if at_least else str(size)
        await send_error(
            send,
            413,
            f"Request body is {what} bytes; the limit is {limit or self.max_body_bytes} ({setting}).",
            "request_too_large",
        )
