"""The server listens before its bundle is loaded (serve.background_load): live at once, ready later.

What Kubernetes probes see: /healthz answers 200 from the first moment, /readyz is 503 until the
bundle is in (and stays 503, with the reason, when it cannot be loaded); API calls meanwhile get a
503 JSON error with Retry-After instead of hanging.
"""

from __future__ import annotations

import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from tests.service.test_service import Server, built, settings_for  # noqa: E402,F401  (built: the session fixture)


def _wait_ready(client, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("never ready")


def test_live_before_ready_then_ready(built):  # noqa: F811
    from pipeline.answer.bundle import open_bundle
    from pipeline.service.app import create_app

    ws, bundle, embedder = built
    gate = threading.Event()
    settings = settings_for(ws)

    def slow_loader(path, previous):
        gate.wait(30)
        return open_bundle(path, settings, embedder)

    app = create_app(bundle, settings, loader=slow_loader, background_load=True)
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.get("/healthz").json()["status"] == "loading"
        assert c.head("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json() == {"ready": False, "reason": "bundle loading"}
        r = c.post("/v1/search", json={"query": "admin password"})
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["type"] == "not_ready"
        gate.set()
        _wait_ready(c)
        assert c.get("/readyz").json()["checksum"] == c.get("/healthz").json()["bundle"]["checksum"]
        assert c.post("/v1/search", json={"query": "admin password"}).json()["results"]
        assert "kb_bundle_info{" in c.get("/metrics").text


def test_a_bundle_that_cannot_load_keeps_readyz_503_with_the_reason(built):  # noqa: F811
    from pipeline.errors import BundleError
    from pipeline.service.app import create_app

    ws, bundle, _ = built

    def broken(path, previous):
        raise BundleError(f"{path} fails its checksum", "re-export")

    app = create_app(bundle, settings_for(ws), loader=broken, background_load=True)
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        deadline = time.monotonic() + 10
        while c.get("/healthz").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/healthz").json()["status"] == "failed"
        r = c.get("/readyz")
        assert r.status_code == 503 and "fails its checksum" in r.json()["reason"]
        assert c.post("/v1/ask", json={"question": "x?"}).status_code == 503
        assert 'kb_bundle_reloads_total{result="refused"} 1.0' in c.get("/metrics").text
