"""Hostile HTTP against a real ``kb serve`` on 127.0.0.1, over raw sockets.

- the corpus (http_cases.py) + HEAD and OPTIONS on every route: each case its 4xx and JSON error
  type, the field at fault named, never a 5xx, and the server answers after every case;
- slow clients (slowloris headers, a trickled, stalled or never-finished body) are cut off within
  the configured time (408 JSON), many at once hold no worker (a normal request still answers);
- refused requests (401, 408, 413, 431, ...) are counted in /metrics by route and status;
- a seeded fuzz of a few hundred schema-shaped, mutated requests: 0 responses >= 500, memory
  bounded (bench/http_fuzz.py runs 10,000).
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import pytest

from tests.hostile import http_fuzz
from tests.hostile.http_cases import CASES, Case, route_method_cases
from tests.hostile.kbserve import KbServe, request_bytes, send_raw
from tests.service.test_service import built  # noqa: F401

pytest.importorskip("uvicorn")

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
SLACK = 2.0  # scheduling on a loaded 2-core machine


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("hostile-http")
    bundle = shutil.copy(built[1], folder / built[1].name)
    with KbServe(folder / bundle.name, header_timeout_s=HEADER_TIMEOUT, body_timeout_s=BODY_TIMEOUT) as srv:
        yield srv


def _send(server: KbServe, case: Case):
    data = case.raw or request_bytes(
        case.method, case.path, case.body, case.headers, auth=case.auth, content_type=case.content_type
    )
    return send_raw(server.port, data, head_only=case.method == "HEAD")


def _check(server: KbServe, case: Case) -> None:
    reply = _send(server, case)
    assert reply.status in case.status, (case.name, reply.status, reply.body[:300])
    assert reply.status < 500
    if reply.status >= 400:
        assert reply.headers.get("content-type", "").startswith("application/json"), (case.name, reply.headers)
    if case.method != "HEAD" and reply.status >= 400:
        error = reply.json()["error"]
        assert set(error) == {"message", "type", "code", "status"} and error["status"] == reply.status
        if case.type is not None:
            assert error["type"] == case.type, (case.name, error)
        if case.names is not None:
            assert case.names in error["message"], (case.name, error["message"])
    health = send_raw(server.port, request_bytes("GET", "/healthz"), timeout=30)
    assert health.status == 200, (case.name, "the server stopped answering")


def test_corpus_has_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request_gets_its_4xx_json_error(server, case):
    _check(server, case)


def test_head_and_options_on_every_route(server):
    doc = send_raw(server.port, request_bytes("GET", "/openapi.json")).json()
    cases = route_method_cases(doc["paths"])
    assert len(cases) >= len(doc["paths"])
    for case in cases:
        _check(server, case)


# -- slow clients -----------------------------------------------------------------------------


def _until_closed(sock: socket.socket, trickle: bytes | None, every: float, limit: float) -> tuple[float, bytes]:
    """Send ``trickle`` one byte at a time every ``every`` s until the server closes; (seconds, reply)."""
    start = time.monotonic()
    sock.settimeout(every)
    reply = b""
    i = 0
    while time.monotonic() - start < limit:
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
            continue
        except TimeoutError:
            pass
        if trickle:
            try:
                sock.sendall(trickle[i % len(trickle) : i % len(trickle) + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            i += 1
    return time.monotonic() - start, reply


def _error_of(reply: bytes) -> dict:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply[:200]
    return json.loads(body)["error"]


def test_slowloris_headers_are_cut_off_with_408(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        seconds, reply = _until_closed(sock, b"X-Slow: aaaaaaaa\r\n", 0.2, 10 * HEADER_TIMEOUT)
    assert seconds < HEADER_TIMEOUT + SLACK
    error = _error_of(reply)
    assert error["type"] == "request_timeout" and "serve.header_timeout_s" in error["message"]


def test_idle_connection_that_never_sends_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        seconds, reply = _until_closed(sock, None, 0.2, 10 * HEADER_TIMEOUT)
    assert seconds < HEADER_TIMEOUT + SLACK
    assert _error_of(reply)["type"] == "request_timeout"


@pytest.mark.parametrize("trickle", [b"", b" "], ids=["stalled", "trickled"])
def test_a_body_that_never_finishes_is_cut_off_with_408(server, trickle):
    head = request_bytes("POST", "/v1/search", b"", {"Content-Length": "5000"})
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + b'{"query": "argo')
        seconds, reply = _until_closed(sock, trickle, 0.2, 10 * BODY_TIMEOUT)
    assert seconds < BODY_TIMEOUT + SLACK
    error = _error_of(reply)
    assert error["type"] == "request_timeout" and "serve.body_timeout_s" in error["message"]


def test_an_unread_body_on_a_get_is_cut_off_too(server):
    head = request_bytes("GET", "/v1/models", b"", {"Content-Length": "5000"})
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + b"abc")
        seconds, reply = _until_closed(sock, b" ", 0.2, 10 * BODY_TIMEOUT)
    assert reply.startswith(b"HTTP/1.1 200")  # answered; the body it never finished closes the connection
    assert seconds < BODY_TIMEOUT + 1.0 + SLACK


def test_many_slow_clients_hold_no_worker(server):
    socks = []
    try:
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
            socks.append(s)
        rss_before = server.rss_kb()
        start = time.monotonic()
        reply = send_raw(server.port, request_bytes("POST", "/v1/search", b'{"query": "argo cd sync"}'))
        assert reply.status == 200 and time.monotonic() - start < 10
        closed = []

        def wait(s: socket.socket) -> None:
            closed.append(_until_closed(s, None, 0.5, 10 * HEADER_TIMEOUT)[0])

        threads = [threading.Thread(target=wait, args=(s,)) for s in socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(closed) == 60 and max(closed) < HEADER_TIMEOUT + 2 * SLACK
        assert server.rss_kb() < rss_before * 1.5
    finally:
        for s in socks:
            s.close()


# -- metrics and fuzz -------------------------------------------------------------------------


def test_refused_requests_are_counted_by_route_and_status(server):
    for case in CASES:
        if case.name in ("search-no-key", "search-declared-1gb", "header-20kb"):
            _send(server, case)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:  # a 408 from the guard
        sock.sendall(request_bytes("POST", "/v1/ask", b"", {"Content-Length": "50"}) + b"{")
        _until_closed(sock, None, 0.2, 10 * BODY_TIMEOUT)
    text = send_raw(server.port, request_bytes("GET", "/metrics")).body.decode()
    for route, status in [("/v1/search", 401), ("/v1/search", 413), ("/v1/models", 431), ("/v1/ask", 408)]:
        assert f'route="{route}",status="{status}"' in text, (route, status)


def test_fuzz_a_few_hundred_requests_no_5xx_and_bounded_memory(server):
    doc = send_raw(server.port, request_bytes("GET", "/openapi.json")).json()
    warm = http_fuzz.generate(doc, 60, seed=1)
    http_fuzz.run(server.port, warm)
    rss_start = server.rss_kb()
    counts, bad = http_fuzz.run(server.port, http_fuzz.generate(doc, 300, seed=17))
    assert not bad, bad[:5]
    assert sum(counts.values()) == 300 and not any(s >= 500 for s in counts)
    assert server.alive()
    assert server.rss_kb() < rss_start * 1.25
    metrics = send_raw(server.port, request_bytes("GET", "/metrics")).body
    assert len(metrics) < 200_000
