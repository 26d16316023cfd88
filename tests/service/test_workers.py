"""``kb serve --workers 2`` on loopback: two processes share the port and the bundle file.

Requests spread over both pids; /metrics (prometheus multiprocess mode, kb's own temp folder)
sums the counters of both; a reload asked of one worker reaches the other (the shared signal).
"""

from __future__ import annotations

import re
import threading

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn", reason="needs kb-atoms[serve]")

from tests.serve_support import kb_serve, wait_for  # noqa: E402
from tests.service.test_service import REAL_QUESTION, built, export_bundle, free_port, make_workspace  # noqa: E402, F401


def _count(metrics: str, route: str, status: str = "") -> float:
    where = rf'[^}}]*status="{status}"' if status else ""
    pattern = rf'^kb_requests_total\{{[^}}]*route="{re.escape(route)}"{where}[^}}]*\}} ([0-9.e+]+)$'
    return sum(float(m) for m in re.findall(pattern, metrics, flags=re.M))


def test_two_workers_share_requests_metrics_and_reloads(built, tmp_path):  # noqa: F811
    from pipeline.index.bundle import read_manifest

    ws = make_workspace(tmp_path / "ws")
    dist = ws / "dist"
    first = export_bundle(ws, dist / "kb-1.duckdb")
    (ws / "kb.yaml").write_text("serve:\n  header_timeout_s: 1\n", encoding="utf-8")  # read by each worker
    with kb_serve("--workspace", ws, "serve", "--workers", "2", port=free_port()) as url:
        pids: set[int] = set()
        lock = threading.Lock()

        def client() -> None:
            for _ in range(6):
                with httpx.Client() as c:  # a new connection each time: the kernel picks the worker
                    r = c.post(url + "/v1/search", json={"query": REAL_QUESTION, "k": 3}, timeout=60)
                    assert r.status_code == 200
                    pid = c.get(url + "/healthz", timeout=60).json()["pid"]
                with lock:
                    pids.add(pid)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(pids) == 2, pids
        metrics = httpx.get(url + "/metrics").text
        assert _count(metrics, "/v1/search") == 48  # both workers' requests, whichever answered /metrics
        assert "kb_uncertain_ratio" in metrics

        checksum = read_manifest(first).checksum
        (ws / "atoms").joinpath(sorted(p.relative_to(ws / "atoms") for p in (ws / "atoms").rglob("*.md"))[0]).unlink()
        second = export_bundle(ws, dist / "kb-2.duckdb")
        new = read_manifest(second).checksum
        assert new != checksum
        assert httpx.post(url + "/admin/reload", timeout=120).json()["bundle"]["checksum"] == new
        seen: dict[int, str] = {}

        def both_reloaded() -> bool:
            with httpx.Client() as c:
                health = c.get(url + "/healthz", timeout=30).json()
            seen[health["pid"]] = health["index"]["checksum"]
            return len(seen) == 2 and set(seen.values()) == {new}

        wait_for(both_reloaded, timeout=120, interval=0.1, what="the reload to reach both workers")
        info = [line for line in httpx.get(url + "/metrics").text.splitlines() if line.startswith("kb_bundle_info{")]
        assert any(new in line and line.endswith(" 1.0") for line in info), info
        assert not any(checksum in line and line.endswith(" 1.0") for line in info), info

        # every worker cuts off a client that never finishes its headers (the workspace's 1 s deadline)
        from tests.hostile.kbserve import send_raw

        port = int(url.rsplit(":", 1)[1])
        for _ in range(4):
            reply = send_raw(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=20)
            assert reply.status == 408 and reply.seconds < 10, (reply.status, reply.seconds)
            assert reply.json()["error"]["code"]
        for _ in range(6):  # h11 refuses it: a 400 naming the request line, from whichever worker
            reply = send_raw(port, b"GARBAGE\r\n\r\n", timeout=20)
            assert reply.status == 400 and "the request line 'GARBAGE'" in reply.json()["error"]["message"]
        # refusals before any route are counted in every worker, summed in /metrics
        metrics = httpx.get(url + "/metrics").text
        assert _count(metrics, "incomplete", "408") == 4 and _count(metrics, "incomplete", "400") == 6


def test_workers_share_the_cores_between_their_native_thread_pools(monkeypatch):
    """Each of N workers gets cores // N OpenMP/OpenBLAS/MKL threads (not one pool of every core each);
    a variable the user set is kept; the environment is restored when the server stops."""
    import os

    from pipeline.service.server import worker_thread_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    with worker_thread_env(4) as set_here:
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "2"
        assert os.environ["OPENBLAS_NUM_THREADS"] == "3" and "OPENBLAS_NUM_THREADS" not in set_here
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["OPENBLAS_NUM_THREADS"] == "3"
    with worker_thread_env(16):
        assert os.environ["OMP_NUM_THREADS"] == "1"  # never 0
