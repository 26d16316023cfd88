"""Auth and request-size limits, as one pure ASGI middleware that runs before any body parsing.

Errors use the OpenAI error shape (``{"error": {"message", "type", "code"}}``) on every endpoint,
so the official client and curl users see the same clear message.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
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
        duplicate = _duplicate_key(text)
    except InputLimitError as exc:
        return "invalid_json", f"The request body is refused: {exc.message}."
    except InputError as exc:  # plain syntax errors are the route's (its message names the field)
        return (
            ("invalid_unicode", f"The request body is refused: {exc.message}.") if "surrogate" in exc.message else None
        )
    if duplicate is not None:
        return "duplicate_key", f"The request body sends the key '{duplicate}' twice in one object; send each key once."
    return None


def _duplicate_key(text: str) -> str | None:
    """The first key sent twice in one JSON object (parsers disagree on which one wins), else None."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and not found:
                found.append(key)
            seen.add(key)
        return dict(items)

    json.loads(text, object_pairs_hook=pairs)
    return found[0] if found else None


def header_bytes(scope: dict) -> int:
    """Request line + header bytes as received (what serve.max_header_bytes bounds)."""
    line = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 16
    return line + sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or [])


def tag_route(scope: dict, routes: list[Any]) -> None:
    """Set ``scope['route']`` for a request refused before routing, so /metrics counts it by route
    (a template such as /v1/atoms/{atom_id}: bounded) instead of as 'unmatched'."""
    if scope.get("route") is not None or not routes:
        return
    from starlette.routing import Match

    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            scope["route"] = route
            return
        if match is Match.PARTIAL and partial is None:
            partial = route
    if partial is not None:
        scope["route"] = partial


class Guard:
    """Bearer key (when one is configured) and the request body size limit."""

    def __init__(
        self,
        app: Any,
        *,
        api_key: str | None,
        max_body_bytes: int,
        path_limits: dict[str, tuple[int, str]] | None = None,
        routes: list[Any] | None = None,
        body_timeout_s: float = 30.0,
        max_header_bytes: int = 16_384,
    ) -> None:
        self.app = app
        self.routes = routes if routes is not None else []  # the app's, to label refused requests by route
        self.body_timeout_s = body_timeout_s
        self.max_header_bytes = max_header_bytes
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        # a route with its own size limit (POST /v1/triage takes whole logs): path -> (bytes, setting name)
        self.path_limits = path_limits or {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._labelled(scope, send)
        if header_bytes(scope) > self.max_header_bytes:
            await send_error(
                send,
                431,
                f"The request line and headers exceed {self.max_header_bytes} bytes (serve.max_header_bytes).",
                "headers_too_large",
                [(b"connection", b"close")],
            )
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
        body = await self._read_body(receive, send, limit, setting)
        if body is None:
            return
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

    async def _read_body(self, receive: Any, send: Any, limit: int, setting: str) -> bytes | None:
        """The whole body (a chunked one has no Content-Length), counted and read by the deadline;
        None when this guard has answered instead (413, 408) or the client left."""
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout_s
        while True:
            event = await _receive_by(receive, deadline)
            if event is None:
                await send_error(
                    send,
                    408,
                    f"The request body did not arrive within {self.body_timeout_s:g} s (serve.body_timeout_s).",
                    "request_timeout",
                    [(b"connection", b"close")],
                )
                return None
            if event["type"] == "http.disconnect":
                return None
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, size, at_least=True, limit=limit, setting=setting)
                return None
            chunks.append(chunk)
            if not event.get("more_body"):
                return b"".join(chunks)

    def _labelled(self, scope: dict, send: Any) -> Any:
        """``send`` that first tags the route of a response this guard writes itself (401, 408, 413, ...)."""

        async def labelled(message: dict) -> None:
            if message["type"] == "http.response.start" and scope.get("route") is None:
                tag_route(scope, self.routes)
            await send(message)

        return labelled

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


async def _receive_by(receive: Any, deadline: float) -> dict | None:
    """The next ASGI message, or None when the deadline passes first (a stalled or trickled body)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    try:
        return await asyncio.wait_for(receive(), remaining)
    except TimeoutError:
        return None
