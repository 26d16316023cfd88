"""``POST /v1/triage`` over real HTTP, and ``query_metric`` against a real Prometheus scraping ``kb serve``."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.service.test_service import Server, built, free_port, make_app  # noqa: F401

LOG = """\
2026-11-28T02:14:01Z [runner-3] job 4410 started
2026-11-28T02:14:06Z [runner-3] ERROR command required for rootless mode with multiple IDs: exec: "newuidmap": executable file not found in $PATH
2026-11-28T02:14:09Z [runner-3] ERROR command required for rootless mode with multiple IDs: exec: "newuidmap": executable file not found in $PATH
2026-11-28T02:14:12Z [runner-3] ERROR job 4410 failed after 11.2s
"""


@pytest.fixture(scope="module")
def triage_server(built):  # noqa: F811
    with Server(make_app(built, **{"ops.max_triage_bytes": 20_000})) as srv:
        yield srv


def test_post_triage_links_the_bundles_atoms(triage_server):
    with httpx.Client(base_url=triage_server.url, timeout=30) as c:
        r = c.post("/v1/triage", json={"log": LOG})
        assert r.status_code == 200, r.text
        groups = r.json()["groups"]
        assert groups[0]["count"] == 2 and groups[0]["line_number"] == 2 and groups[0]["file"] == "-"
        atom = groups[0]["atoms"][0]
        assert atom["atom_id"] == "podman-newuidmap-missing-when-running-rootless-podman-commands"
        assert atom["resolution"] and atom["citations"][0]["atom_id"] == atom["atom_id"]
        assert groups[1]["uncovered"] and groups[1]["atoms"] == []


def test_post_triage_records_uncovered_errors_as_gaps(built, tmp_path: Path):  # noqa: F811
    from pipeline.index.gaps import GapLog
    from pipeline.service.app import create_app
    from tests.service.test_service import settings_for

    ws, bundle, embedder = built
    log = GapLog(tmp_path / "gaps.duckdb")
    with Server(create_app(bundle, settings_for(ws), embedder=embedder, gap_log=log)) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for _ in range(2):
                assert c.post("/v1/triage", json={"log": LOG}).status_code == 200
    [gap] = log.all()  # the covered newuidmap group is no gap; the uncovered "job failed" one is, counted up
    assert gap.kind == "uncovered-error" and "failed after" in gap.text and gap.count == 2
    assert gap.detail and gap.detail.startswith("-:4")


def test_post_triage_has_its_own_size_limit(triage_server):
    with httpx.Client(base_url=triage_server.url, timeout=30) as c:
        big = {"log": "ERROR x\n" * 5000}  # 40 kB: under the 5 MB default, over this server's 20 kB
        r = c.post("/v1/triage", json=big)
        assert r.status_code == 413 and "ops.max_triage_bytes" in r.json()["error"]["message"]
        # other routes keep serve.max_body_bytes (64 kB), so 30 kB still fits /v1/search's limit
        ok = c.post("/v1/triage", json={"log": "ERROR x\n" * 2000})
        assert ok.status_code == 200
        assert c.post("/v1/triage", json={"log": "  "}).status_code == 422
        assert c.post("/v1/triage", json={"text": "x"}).status_code == 422


@pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="needs Debian's prometheus (scripts/setup.sh installs it)"
)
def test_query_metric_against_a_real_prometheus_scraping_kb_serve(triage_server, tmp_path: Path):
    from pipeline.ops.manifest import SystemManifest
    from pipeline.ops.sources import query_metric

    host = triage_server.url.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
        f"scrape_configs:\n  - job_name: kb\n    static_configs: [{{targets: ['{host}']}}]\n",
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=triage_server.url, timeout=30) as c:
            for _ in range(3):
                c.post("/v1/triage", json={"log": LOG})
        manifest = SystemManifest(
            name="kb-test",
            metrics={"base_url": f"http://127.0.0.1:{port}",
                     "queries": {"triage_requests": 'sum(kb_requests_total{route="/v1/triage"})'}},
        )  # fmt: skip
        deadline = time.monotonic() + 45
        out = None
        while time.monotonic() < deadline:
            try:
                out = query_metric(manifest, "triage_requests", "5m", step="1s", timeout=5)
                if out["series"] and out["series"][0]["values"]:
                    break
            except Exception:  # noqa: BLE001 - prometheus still starting
                pass
            time.sleep(0.5)
        assert out and out["status"] == "success" and out["series"], out
        assert float(out["series"][0]["values"][-1][1]) >= 3
        # a budget cuts the series and says so
        small = query_metric(manifest, "triage_requests", "5m", step="1s", budget_chars=10)
        assert small["truncated"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
