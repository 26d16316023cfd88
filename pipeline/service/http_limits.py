"""Slow, stalled and malformed clients at the HTTP protocol layer (uvicorn's h11), before any ASGI code.

uvicorn bounds the header bytes it buffers and closes idle keep-alive connections, but it puts no
time bound on a request in flight: a client that trickles its headers (slowloris) or never finishes
its body holds the connection (and its buffers) forever. Here every request phase has a deadline:

- headers: within ``serve.header_timeout_s`` of the request's first byte;
- body: within ``serve.body_timeout_s`` of the headers. The Guard (guards.py) enforces the same
  deadline while it reads a body and answers 408 itself; this is the backstop for bodies nothing
  reads (a GET with a Content-Length, a handler that answered early), one second later.

When a deadline passes, the client gets a 408 in kb's JSON error shape (if no response has started)
and the connection is closed. Malformed requests and headers over ``serve.max_header_bytes`` get
400 / 431 in the same JSON shape instead of uvicorn's text/plain; the 400 names what h11 refused
(the request line, or the header by name), which uvicorn drops. A connection beyond
``serve.max_connections`` open ones (per serving process) gets a JSON 503 with ``Retry-After`` and is
closed before anything it sends is read (uvicorn's own ``limit_concurrency`` answers text/plain).
Each rejection is counted in ``/metrics`` through ``on_reject``. Waiting costs no worker thread: it
is a timer on the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipeline.service.guards import error_body

BACKSTOP_GRACE_S = 1.0  # the Guard's own 408 (with the route in /metrics) comes first
RETRY_AFTER_S = 1  # what a client refused by the connection cap is told to wait
LINGER_S = 2.0  # a refused connection is half-closed, then closed (its unread bytes would reset our answer)
_PHRASES = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}

OnReject = Callable[[int, "dict[str, Any] | None"], None]


def raw_error(status: int, message: str, type_: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 error response (JSON body, connection closed) written past h11's state machine."""
    body = error_body(status, message, type_)
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {_PHRASES[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_BYTES = re.compile(r"bytearray\((b(['\"]).*\2)\)", re.S)


def _shown(raw: str, limit: int = 120) -> str:
    """The client's bytes as h11 quoted them (its repr: control bytes escaped), cut to ``limit``."""
    text = raw[2:-1] if raw[:2] in ("b'", 'b"') else raw
    return text if len(text) <= limit else text[:limit] + "..."


def describe_h11_error(text: str) -> str:
    """What h11 refused, in words naming the request line or the header (its exception text, reworded)."""
    found = _BYTES.search(text)
    line = _shown(found.group(1)) if found else ""
    if text.startswith("illegal request line"):
        return f"Malformed HTTP request: the request line '{line}' is not 'METHOD /path HTTP/1.1'."
    if text.startswith("illegal header line"):
        name = line.split(":", 1)[0].strip() if ":" in line else ""
        what = f"the header '{name}'" if name and " " not in name else "a header line"
        return (
            f"Malformed HTTP request: {what} ('{line}') is not 'Name: value' "
            "(a token name, a value without control characters)."
        )
    if "Content-Length" in text:
        return f"Malformed HTTP request: the Content-Length header is wrong ({text}); send one decimal length."
    if "Transfer-Encoding" in text:
        return f"Malformed HTTP request: the Transfer-Encoding header is not supported ({text})."
    if "Host" in text:
        return f"Malformed HTTP request: the Host header is wrong ({text}); send exactly one."
    return f"Malformed HTTP request: {_shown(text, 200)}."


class DeadlineMixin:
    """Mixed in before uvicorn's ``H11Protocol`` (see ``protocol_class``): deadlines and JSON errors."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 16_384
    max_connections: int = 1000
    on_reject: OnReject | None = None
    # provided by H11Protocol
    conn: Any
    connections: set[Any]
    transport: Any
    cycle: Any
    loop: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kb_phase: str | None = None
        self._kb_timer: Any = None
        self._kb_refused = False
        self._kb_h11_error = ""
        next_event = self.conn.next_event

        def keep_h11_error() -> Any:  # uvicorn drops the exception's text; the 400 names what was wrong
            import h11

            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._kb_h11_error = str(exc)
                raise

        self.conn.next_event = keep_h11_error

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # a mixin: H11Protocol comes after it in the MRO
        if len(self.connections) > self.max_connections:  # this one is already in the set
            self._kb_refuse_busy()
            return
        self._kb_arm("headers")

    def _kb_refuse_busy(self) -> None:
        """Over the connection cap: a JSON 503 with Retry-After, nothing read, half-closed then closed."""
        self._kb_refused = True
        message = (
            f"The server has {self.max_connections} connections open (serve.max_connections); "
            f"retry in {RETRY_AFTER_S} s."
        )
        self.transport.write(raw_error(503, message, "too_many_connections", {"retry-after": str(RETRY_AFTER_S)}))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._kb_timer = self.loop.call_later(LINGER_S, self.transport.close)
        if self.on_reject is not None:
            self.on_reject(503, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._kb_disarm()
        super().connection_lost(exc)  # type: ignore[misc]  # a mixin: H11Protocol comes after it in the MRO

    def data_received(self, data: bytes) -> None:
        if self._kb_refused:  # over the cap: answered already, what it sends is dropped
            return
        super().data_received(data)  # type: ignore[misc]  # a mixin: H11Protocol comes after it in the MRO
        self._kb_track(after_response=False)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]  # a mixin: H11Protocol comes after it in the MRO
        self._kb_track(after_response=True)

    def send_400_response(self, msg: str) -> None:
        """h11 refused the request: 431 when its header buffer overflowed, else 400; JSON, closed."""
        limit = self.max_header_bytes
        if len(self.conn.trailing_data[0]) >= limit:
            message = f"The request line and headers exceed {limit} bytes (serve.max_header_bytes)."
            self._kb_close_with(431, message, "headers_too_large", None)
            return
        message = describe_h11_error(self._kb_h11_error) if self._kb_h11_error else msg
        self._kb_close_with(400, message, "invalid_http", None)

    def _kb_track(self, *, after_response: bool) -> None:
        """Follow h11's view of the client: reading headers, reading a body, or done."""
        import h11

        if self.transport is None or self.transport.is_closing():
            self._kb_disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # after a response, an idle keep-alive connection is uvicorn's (timeout_keep_alive);
            # the next request's first byte starts its header deadline
            if self._kb_phase is None and not after_response:
                self._kb_arm("headers")
        elif state is h11.SEND_BODY:
            if self._kb_phase != "body":
                self._kb_arm("body")
        else:
            self._kb_disarm()

    def _kb_arm(self, phase: str) -> None:
        self._kb_disarm()
        self._kb_phase = phase
        delay = self.header_timeout_s if phase == "headers" else self.body_timeout_s + BACKSTOP_GRACE_S
        self._kb_timer = self.loop.call_later(delay, self._kb_expire, phase)

    def _kb_disarm(self) -> None:
        if self._kb_timer is not None:
            self._kb_timer.cancel()
        self._kb_timer = None
        self._kb_phase = None

    def _kb_expire(self, phase: str) -> None:
        self._kb_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if phase == "headers":
            message = f"The request headers did not arrive within {self.header_timeout_s:g} s (serve.header_timeout_s)."
            self._kb_close_with(408, message, "request_timeout", None)
            return
        message = f"The request body did not arrive within {self.body_timeout_s:g} s (serve.body_timeout_s)."
        self._kb_close_with(408, message, "request_timeout", self.cycle)

    def _kb_close_with(self, status: int, message: str, type_: str, cycle: Any) -> None:
        """Answer (unless a response is under way), stop the request's handler, close."""
        self._kb_disarm()
        in_flight = cycle is not None and not cycle.response_complete
        if not (in_flight and cycle.response_started):
            self.transport.write(raw_error(status, message, type_))
        if in_flight:  # the handler's receive() returns http.disconnect; its sends are dropped
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
        if self.on_reject is not None:
            self.on_reject(status, cycle.scope if cycle is not None else None)


def protocol_class(
    *,
    header_timeout_s: float,
    body_timeout_s: float,
    max_header_bytes: int,
    max_connections: int = DeadlineMixin.max_connections,
    on_reject: OnReject | None = None,
) -> type:
    """uvicorn's h11 protocol with per-phase deadlines and JSON protocol errors (``uvicorn.Config(http=...)``)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limits = {
        "header_timeout_s": header_timeout_s,
        "body_timeout_s": body_timeout_s,
        "max_header_bytes": max_header_bytes,
        "max_connections": max_connections,
        "on_reject": staticmethod(on_reject) if on_reject is not None else None,
    }
    return type("KbH11Protocol", (DeadlineMixin, H11Protocol), limits)


def reject_counter(web: Any) -> OnReject | None:
    """``on_reject`` for an app from ``create_app``: protocol-level refusals in its ``kb_requests_total``.

    A refusal before any request was parsed has no route: ``incomplete`` (a 400/408/431 on a request
    h11 could not finish), ``connections`` (the connection cap's 503).
    """
    service = getattr(getattr(web, "state", None), "service", None)
    metrics = getattr(service, "metrics", None)
    if metrics is None:
        return None
    from pipeline.service.metrics import _method, _route

    def on_reject(status: int, scope: dict[str, Any] | None) -> None:
        if scope is not None:
            route, method = _route(scope), _method(scope)
        else:
            route, method = ("connections" if status == 503 else "incomplete"), "other"
        metrics.requests.labels(route=route, method=method, status=str(status)).inc()

    return on_reject


def uvicorn_options(web: Any) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments for an app from ``create_app`` (its settings and metrics)."""
    from pipeline.config import ServeSettings

    service = getattr(getattr(web, "state", None), "service", None)
    serve = service.settings.serve if service is not None else ServeSettings()
    return {
        "http": protocol_class(
            header_timeout_s=serve.header_timeout_s,
            body_timeout_s=serve.body_timeout_s,
            max_header_bytes=serve.max_header_bytes,
            max_connections=serve.max_connections,
            on_reject=reject_counter(web),
        ),
        "h11_max_incomplete_event_size": serve.max_header_bytes,
    }
