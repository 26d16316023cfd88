"""The connection cap (serve.max_connections) of a real ``kb serve``, over raw sockets.

With the cap's connections open, one more gets a JSON 503 (kb's error shape, ``Retry-After``) even
when it sends a whole request at once (the answer is not lost to a reset: the server half-closes
and lingers), the connections inside the cap still answer, a freed slot is usable again, and the
refusals are counted in /metrics (``route="connections"``).
"""

from __future__ import annotations

import re
import shutil
import socket
import time

import pytest

from tests.hostile.kbserve import KbServe, parse_reply, request_bytes, send_raw
from tests.service.test_service import built  # noqa: F401

pytest.importorskip("uvicorn")

CAP = 4


@pytest.fixture(scope="module")
def capped(built, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("capped")
    bundle = shutil.copy(built[1], folder / built[1].name)
    env = {"KB_SERVE_MAX_CONNECTIONS": str(CAP)}
    with KbServe(folder / bundle.name, header_timeout_s=30, body_timeout_s=30, extra_env=env) as srv:
        yield srv


def _read_all(sock: socket.socket, limit: float = 20.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _refused_count(server: KbServe) -> float:
    text = send_raw(server.port, request_bytes("GET", "/metrics")).body.decode()
    found = re.findall(r'^kb_requests_total\{[^}]*route="connections"[^}]*status="503"[^}]*\} ([0-9.e+]+)$', text, re.M)
    return sum(float(v) for v in found)


def test_one_connection_over_the_cap_gets_a_json_503(capped):
    before = _refused_count(capped)
    time.sleep(0.5)  # the /metrics connection above is closed on the server's side too
    held = [socket.create_connection(("127.0.0.1", capped.port)) for _ in range(CAP)]
    try:
        time.sleep(0.5)  # accepted: they count
        replies = []
        for _ in range(2):  # a whole request sent at once still reads its 503
            with socket.create_connection(("127.0.0.1", capped.port)) as extra:
                extra.sendall(request_bytes("POST", "/v1/search", b'{"query": "argo cd sync"}'))
                replies.append(parse_reply(_read_all(extra), 0))
        for reply in replies:
            assert reply.status == 503, reply
            assert reply.headers["content-type"] == "application/json" and reply.headers["retry-after"] == "1"
            error = reply.json()["error"]
            assert error["type"] == "too_many_connections" and error["status"] == 503
            assert f"{CAP} connections" in error["message"] and "serve.max_connections" in error["message"]
        # the connections inside the cap are served as usual
        held[0].sendall(request_bytes("GET", "/healthz"))
        assert parse_reply(_read_all(held[0]), 0).status == 200
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)  # the slots are free again
    assert send_raw(capped.port, request_bytes("POST", "/v1/search", b'{"query": "argo cd sync"}')).status == 200
    assert _refused_count(capped) == before + 2
