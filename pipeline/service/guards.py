"""Auth and request-size limits, as one pure ASGI middleware that runs before any body parsing.

Errors use the OpenAI error shape (``{"error": {"message", "type", "code"}}``) on every endpoint,
so the official client and curl users see the same clear message.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

OPEN_PATHS = frozenset({"/healthz", "/", "/chat.js", "/chat.css"})  # the chat page asks for the key itself


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


def body_problem(body: bytes, content_type: bytes) -> tuple[str, str] | None:
    """(error type, message) for a JSON body no route should see: not UTF-8, lone surrogates, NUL,
    a bomb (depth, number length); None when it is fine or not JSON (the route validates)."""
    if not body or (b"json" not in content_type.lower() and body.lstrip()[:1] not in (b"{", b"[")):
        return None
    from pipeline import safeload
    from pipeline.errors import InputError, InputLimitError

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "invalid_encoding", f"The request body is not UTF-8 (byte {exc.start})."
    if "\x00" in text or "\\u0000" in text:
        return "invalid_text", "The request body holds a NUL character, which no field accepts."
    try:
        safeload.load_json(text)
    except InputLimitError as exc:
        return "invalid_json", f"The request body is refused: {exc.message}."
    except InputError as exc:  # plain syntax errors are the route's (its message names the field)
        return (
            ("invalid_unicode", f"The request body is refused: {exc.message}.") if "surrogate" in exc.message else None
        )
    return None


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
        if length is not None and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            await send_error(
                send, 400, "Send Content-Length or Transfer-Encoding: chunked, not both.", "conflicting_framing"
            )
            return
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
        problem = body_problem(body, headers.get(b"content-type", b""))
        if problem is not None:
            await send_error(send, 400, problem[1], problem[0])
            return
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
