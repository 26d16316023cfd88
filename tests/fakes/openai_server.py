"""A real loopback HTTP server speaking the OpenAI chat-completions API, scripted per test.

Tests start it, queue the answers the "model" gives, and point the real openai + instructor
clients at ``server.base_url``. Every request body is recorded in ``server.requests`` so tests
can assert what was sent (re-asks, retries, prompts). When the queue is empty, ``responder``
(a function of the request body) answers; without one the server answers 500.

    with OpenAIServer() as server:
        server.push(tool_call("ExtractionResult", {...}))
        server.push(status(429, retry_after=0), tool_call(...))

Answers: ``tool_call`` (function-calling reply), ``text`` (plain content, e.g. JSON modes),
``status`` (an error status with optional Retry-After), ``slow`` (delay, then another answer;
for client timeouts). ``stream=true`` requests get server-sent events of the same answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: dict[str, Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def estimate_tokens(text: str) -> int:
    """What the fake reports as usage: about four characters per token, like English BPE."""
    return max(1, len(text) // 4)


def _completion(message: dict[str, Any], finish: str, usage: dict[str, int] | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": finish, "message": message, "logprobs": None}],
        "usage": usage,
    }


def tool_call(name: str, arguments: Any, *, usage: dict[str, int] | None = None) -> Answer:
    """A function-calling answer (instructor's TOOLS mode). ``arguments``: an object or a raw string."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}],
    }
    return Answer(body=_completion(message, "tool_calls", usage))


def text(content: str, *, usage: dict[str, int] | None = None) -> Answer:
    return Answer(body=_completion({"role": "assistant", "content": content}, "stop", usage))


def status(code: int, message: str = "scripted error", *, retry_after: float | None = None) -> Answer:
    headers = {}
    if retry_after is not None:
        headers["retry-after-ms"] = str(int(retry_after * 1000))
        headers["Retry-After"] = str(int(retry_after))
    kind = "rate_limit_exceeded" if code == 429 else "server_error"
    return Answer(status=code, body={"error": {"message": message, "type": kind, "code": kind}}, headers=headers)


def slow(delay_s: float, answer: Answer) -> Answer:
    return Answer(answer.status, answer.body, answer.raw, dict(answer.headers), delay_s)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that hung up
        pass


class OpenAIServer:
    """Scripted OpenAI-compatible server on 127.0.0.1 (a free port), run in a daemon thread."""

    def __init__(self, responder: Callable[[dict[str, Any]], Answer] | None = None):
        self.queue: deque[Answer] = deque()
        self.requests: list[dict[str, Any]] = []
        self.responder = responder
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-openai", daemon=True)

    # lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # script ------------------------------------------------------------------------------
    def push(self, *answers: Answer) -> None:
        with self._lock:
            self.queue.extend(answers)

    def _next(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            self.requests.append(body)
            if self.queue:
                return self.queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        return status(500, "the fake server has no scripted answer left")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, code: int, payload: bytes, headers: dict[str, str], ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    data = {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "kb"}]}
                    self._send(200, json.dumps(data).encode(), {}, "application/json")
                else:
                    self._send(404, b'{"error":{"message":"not found"}}', {}, "application/json")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(400, b'{"error":{"message":"request body is not JSON"}}', {}, "application/json")
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error":{"message":"unknown endpoint"}}', {}, "application/json")
                    return
                answer = server._next(body)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                if answer.raw is not None:
                    self._send(answer.status, answer.raw, answer.headers, "application/json")
                    return
                payload = dict(answer.body or {})
                if answer.status == 200 and "choices" in payload and payload.get("usage") is None:
                    prompt = estimate_tokens(json.dumps(body.get("messages", [])) + json.dumps(body.get("tools", [])))
                    msg = payload["choices"][0]["message"]
                    out = estimate_tokens(json.dumps(msg.get("tool_calls") or msg.get("content") or ""))
                    payload["usage"] = {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}
                if answer.status == 200 and body.get("stream") and "choices" in payload:
                    self._stream(payload, bool((body.get("stream_options") or {}).get("include_usage")))
                    return
                self._send(answer.status, json.dumps(payload).encode(), answer.headers, "application/json")

            def _stream(self, payload: dict[str, Any], include_usage: bool) -> None:
                msg = payload["choices"][0]["message"]
                content = msg.get("content") or ""
                chunks = []
                base = {
                    "id": payload["id"],
                    "object": "chat.completion.chunk",
                    "created": payload["created"],
                    "model": payload["model"],
                }
                chunks.append(
                    {
                        **base,
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                    }
                )
                for i in range(0, len(content), 16):
                    chunks.append(
                        {
                            **base,
                            "choices": [{"index": 0, "delta": {"content": content[i : i + 16]}, "finish_reason": None}],
                        }
                    )
                chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if include_usage:
                    chunks.append({**base, "choices": [], "usage": payload["usage"]})
                data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
                self._send(200, data, {"Cache-Control": "no-cache"}, "text/event-stream")

        return Handler
