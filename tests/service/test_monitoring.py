"""Monitoring: the generated Grafana dashboard, the Prometheus alert rules and kb's own runbooks.

Every metric the dashboard and the rules read must be one a live ``kb serve`` exposes (or the
workers define); the rules pass ``promtool check rules`` and their unit tests; every alert's
runbook names a playbook atom of the shipped sample that ``kb check`` accepts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "kb-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "kb-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "kb-dashboard.json"
RUNBOOKS = ROOT / "samples" / "atoms" / "playbook"

pytest.importorskip("prometheus_client", reason="needs the serve extra (kb-atoms[serve])")


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_committed_dashboard_is_the_generated_one():
    from pipeline.service import dashboard

    generated = dashboard.render()
    if DASHBOARD.read_text() != generated:
        pytest.fail(
            "deploy/grafana/kb-dashboard.json is stale: run `kb monitoring dashboard --out deploy/grafana/kb-dashboard.json`"
        )


def test_dashboard_covers_the_service():
    from pipeline.service import dashboard

    titles = [p["title"] for p in dashboard.build()["panels"]]
    for want in (
        "Requests by route",
        "Error ratio (5xx) by route",
        "Latency p50 / p95 / p99 by route",
        "Uncertain ratio",
        "Answers by mode",
        "LLM tokens per second",
        "LLM cost per hour",
        "Bundle served",
        "Bundle reloads by result",
    ):
        assert want in titles
    exprs = " ".join(_dashboard_exprs(dashboard.build()))
    assert "histogram_quantile(0.99" in exprs and "histogram_quantile(0.5," in exprs


def test_panels_of_missing_families_are_left_out():
    from pipeline.service import dashboard

    only_requests = {k: v for k, v in dashboard.catalogue().items() if k == "kb_requests_total"}
    titles = [p["title"] for p in dashboard.build(only_requests)["panels"] if p["type"] != "row"]
    assert titles == ["Requests by route", "Error ratio (5xx) by route", "Client errors (4xx) by status"]


def test_every_metric_read_is_exposed_by_a_live_server(built_server):
    """The dashboard's and the rules' metric names against what a real server on loopback exposes."""
    from prometheus_client.parser import text_string_to_metric_families

    from pipeline.service import dashboard

    client = built_server
    client.post("/v1/search", json={"query": "admin password"})
    client.post("/v1/ask", json={"question": "How do I reset the admin password?"})
    client.post("/admin/reload", json={"path": "/nonexistent/kb-x.duckdb"})  # a refused reload is counted
    text = client.get("/metrics").text
    exposed: set[str] = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        exposed.update(sample.name for sample in family.samples)
        if family.type == "counter":
            exposed.add(family.name + "_total")
    worker_names = {
        n for f in dashboard.catalogue().values() for n in dashboard.exposed_names(f) if n.startswith("kb_jobs_")
    }
    used: set[str] = set()
    for expr in _dashboard_exprs(json.loads(DASHBOARD.read_text())) + [r["expr"] for r in _rules()]:
        used |= dashboard.metric_names(expr)
    serve_used = {n for n in used if not n.startswith("kb_jobs_")}
    assert serve_used and serve_used <= exposed, f"not on /metrics: {sorted(serve_used - exposed)}"
    jobs_used = used - serve_used
    if jobs_used and worker_names:
        assert jobs_used <= worker_names, f"not defined by kb worker: {sorted(jobs_used - worker_names)}"
    assert 'kb_bundle_reloads_total{result="refused"}' in text


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="needs promtool (Debian package prometheus; make setup installs it)"
)
def test_promtool_checks_and_unit_tests_pass():
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout
    unit = subprocess.run(
        ["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, cwd=RULES.parent
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "SUCCESS" in unit.stdout


def test_every_alert_has_a_runbook_that_resolves_to_a_playbook_atom():
    import frontmatter

    alerts = {r["alert"] for r in _rules()}
    assert {
        "KbServiceDown",
        "KbHigh5xxRatio",
        "KbHighLatencyP95",
        "KbUncertainRateHigh",
        "KbBundleReloadFailing",
        "KbQueueBacklog",
    } <= alerts
    for rule in _rules():
        url = rule["annotations"]["runbook_url"]
        m = re.fullmatch(r"https://[^/]+/atoms/playbook/([a-z0-9-]+)\.html", url)
        assert m, f"{rule['alert']}: runbook_url {url!r} is not a playbook atom page"
        path = RUNBOOKS / f"{m.group(1)}.md"
        assert path.is_file(), f"{rule['alert']}: no runbook atom {path.relative_to(ROOT)}"
        meta = frontmatter.load(path).metadata
        assert meta["type"] == "playbook" and meta["id"] == m.group(1)


def test_runbook_atoms_pass_kb_check(tmp_path, kb):
    ws = tmp_path / "ws"
    assert kb("init", ws).exit_code == 0
    shutil.copytree(RUNBOOKS, ws / "atoms" / "playbook", dirs_exist_ok=True)
    result = kb("-w", ws, "check", "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert not [f for f in findings if f["severity"] == "error"]


@pytest.fixture(scope="module")
def built_server(tmp_path_factory):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings
    from pipeline.service.app import create_app
    from tests.service.test_service import Server, export_bundle, make_workspace

    base = tmp_path_factory.mktemp("monitoring")
    ws = make_workspace(base / "ws")
    embedder = load_embedder(Settings.load(ws))
    bundle = export_bundle(ws, base / "dist" / "kb-test.duckdb", embedder=embedder)
    app = create_app(bundle, Settings.load(ws), embedder=embedder)
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client
