"""kb change: 30 near-identical Argo CD Applications, validated against the real Application CRD schema."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ruamel.yaml", reason="needs the 'change' extra (ruamel.yaml)")

from pipeline.change import docs, paths  # noqa: E402
from pipeline.change.recipe import parse_value, parse_where  # noqa: E402
from tests.paths import REPO_ROOT, TESTS_DATA  # noqa: E402

DATA = TESTS_DATA / "change"
SCHEMA = DATA / "argocd-application.schema.json"
PLAN = [
    "change",
    "plan",
    "--files",
    "apps/*.yaml",
    "--where",
    "metadata.labels.team=payments",
    "--set",
    "spec.syncPolicy.automated.prune=true",
    "--append",
    "spec.syncPolicy.syncOptions=PruneLast=true",
]


def register(ws: Path, glob: str = "apps/*.yaml") -> None:
    """What `kb schemas add SCHEMA --for GLOB` writes (its meta-schema check of the big CRD takes seconds)."""
    configs = ws / "schemas" / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCHEMA, configs / "argocd-application.json")
    (configs / "targets.yaml").write_text(f"argocd-application:\n- {glob}\n")


@pytest.fixture
def fleet(workspace, monkeypatch):
    shutil.copytree(DATA / "apps", workspace / "apps")
    monkeypatch.chdir(workspace)
    register(workspace)
    return workspace


def test_schemas_add_registers_a_schema_or_a_crd_and_the_files_it_validates(workspace, kb, tmp_path):
    small = tmp_path / "team.schema.json"
    small.write_text(json.dumps({"type": "object", "properties": {"team": {"type": "string"}}}))
    crd = tmp_path / "widget-crd.yaml"
    crd.write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: x.io\n"
        "  names: {kind: Widget}\n  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema:\n"
        "        type: object\n        properties:\n          size: {type: integer}\n"
    )
    r = kb("-w", workspace, "schemas", "add", small, crd, "--for", "conf/*.yaml")
    assert r.exit_code == 0, r.stderr
    configs = workspace / "schemas" / "configs"
    assert json.loads((configs / "widget-crd.json").read_text())["properties"]["size"] == {"type": "integer"}
    assert "conf/*.yaml" in (configs / "targets.yaml").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": 12}')
    r = kb("-w", workspace, "schemas", "add", bad)
    assert r.exit_code == 1 and "not a valid JSON Schema" in r.stderr
    assert kb("-w", workspace, "schemas", "write").exit_code == 0


def _bytes(ws: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ws / "apps").glob("*.yaml"))}


def _plan(kb, *extra: str) -> tuple[int, dict]:
    r = kb(*PLAN, "--format", "json", *extra)
    assert r.exit_code in (0, 3, 4), r.stderr
    return r.exit_code, json.loads(r.stdout)


def test_plan_changes_the_right_files_only_and_keeps_comments(fleet, kb):
    before = _bytes(fleet)
    code, plan = _plan(kb, "--detailed-exitcode")
    assert code == 4
    assert plan["summary"] == {"changed": 19, "unchanged": 11, "skipped": 0, "invalid": 0}
    status = {Path(f["path"]).name: f for f in plan["files"]}
    assert status["fraud.yaml"]["status"] == "unchanged" and status["fraud.yaml"]["selected"] == 1  # had it
    assert all(
        f["status"] == "unchanged" and f["selected"] == 0
        for f in plan["files"]
        if b"team: search" in before[Path(f["path"]).name]
    )
    assert _bytes(fleet) == before  # planning writes nothing outside plans/
    r = kb("change", "apply", plan["id"], "--yes")
    assert r.exit_code == 0, r.stderr
    after = _bytes(fleet)
    import jsonschema
    from ruamel.yaml import YAML

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for name, old in before.items():
        if status[name]["status"] != "changed":
            assert after[name] == old, name
            continue
        assert after[name] != old
        comments = [ln.strip() for ln in old.decode().splitlines() if "#" in ln]
        assert all(any(c in ln for ln in after[name].decode().splitlines()) for c in comments), name
        doc = YAML(typ="safe").load(after[name])
        assert doc["spec"]["syncPolicy"]["automated"]["prune"] is True
        assert doc["spec"]["syncPolicy"]["syncOptions"].count("PruneLast=true") == 1
        assert not list(validator.iter_errors(doc))
        # untouched lines keep their order and quoting: the old text minus nothing
        old_lines = old.decode().splitlines()
        new_lines = after[name].decode().splitlines()
        assert [ln for ln in new_lines if ln in old_lines] == old_lines, name
    assert (fleet / "plans" / plan["id"] / "rollback.patch").is_file()


def test_second_apply_and_replan_change_nothing_and_rollback_restores_bytes(fleet, kb):
    before = _bytes(fleet)
    _, plan = _plan(kb)
    assert kb("change", "apply", plan["id"], "--yes").exit_code == 0
    applied = _bytes(fleet)
    r = kb("change", "apply", plan["id"], "--yes")
    assert r.exit_code == 0 and "already applied" in r.stdout
    assert _bytes(fleet) == applied
    code, again = _plan(kb, "--detailed-exitcode")
    assert code == 0 and again["summary"]["changed"] == 0
    r = kb("change", "rollback", plan["id"], "--yes")
    assert r.exit_code == 0, r.stderr
    assert _bytes(fleet) == before


def test_schema_violation_blocks_apply(fleet, kb):
    before = _bytes(fleet)
    r = kb(
        "change", "plan", "--files", "apps/*.yaml", "--set", "spec.syncPolicy.automated.prune=yes", "--format", "json"
    )
    assert r.exit_code == 3
    plan = json.loads(r.stdout)
    assert plan["valid"] is False and plan["summary"]["invalid"] == 30
    assert any("'yes' is not of type 'boolean'" in e for f in plan["files"] for e in f["errors"])
    r = kb("change", "apply", plan["id"], "--yes")
    assert r.exit_code == 3 and "do not validate" in r.stderr
    assert _bytes(fleet) == before


def test_stale_plan_is_refused(fleet, kb):
    _, plan = _plan(kb)
    victim = fleet / "apps" / "search-api.yaml"  # not even selected: any input's hash counts
    victim.write_text(victim.read_text() + "# edited meanwhile\n")
    before = _bytes(fleet)
    r = kb("change", "apply", plan["id"], "--yes")
    assert r.exit_code == 3 and "stale" in r.stderr and "search-api.yaml" in r.stderr
    assert _bytes(fleet) == before


def test_an_instruction_is_one_llm_request_and_apply_asks_nothing(fleet, kb, monkeypatch):
    from tests.fakes.openai_server import OpenAIServer, tool_call

    recipe = {
        "description": "prune payments apps",
        "where": [{"path": "metadata.labels.team", "test": "equals", "value": "payments"}],
        "ops": [{"op": "set", "path": "spec.syncPolicy.automated.prune", "value": True}],
    }
    with OpenAIServer() as server:
        server.push(tool_call("Recipe", recipe))
        monkeypatch.setenv("KB_LLM_BASE_URL", server.base_url)
        r = kb(
            "change",
            "plan",
            "turn on automated pruning for the payments team",
            "--files",
            "apps/*.yaml",
            "--format",
            "json",
        )
        assert r.exit_code == 0, r.stderr
        plan = json.loads(r.stdout)
        assert len(server.requests) == 1  # one request for 30 files
        assert plan["llm"]["requests"] == 1 and plan["summary"]["changed"] == 19
        assert kb("change", "apply", plan["id"], "--yes").exit_code == 0
        assert len(server.requests) == 1  # no LLM request during apply


def test_kill_9_during_apply_leaves_all_old_or_all_new(fleet, kb):
    before = _bytes(fleet)
    _, plan = _plan(kb)
    planned = json.loads((fleet / "plans" / plan["id"] / "after.json").read_text())
    new = {
        Path(f["path"]).name: planned[str(i)].encode() for i, f in enumerate(plan["files"]) if f["status"] == "changed"
    }
    env = {**os.environ, "KB_CHANGE_APPLY_PAUSE_S": "0.15", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "-w", str(fleet), "change", "apply", plan["id"], "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any(_bytes(fleet)[n] == b for n, b in new.items()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    mid = _bytes(fleet)
    written = sum(mid[n] == b for n, b in new.items())
    assert 0 < written < len(new), "the kill should land mid-apply"
    assert (fleet / "plans" / plan["id"] / "journal.json").is_file()
    r = kb("-w", fleet, "config")  # any next kb command finishes the job and says so
    assert "rolled forward" in r.stderr
    final = _bytes(fleet)
    assert all(final[n] == new.get(n, before[n]) for n in before)
    assert not (fleet / "plans" / plan["id"] / "journal.json").exists()
    assert kb("change", "rollback", plan["id"], "--yes").exit_code == 0
    assert _bytes(fleet) == before


def test_interrupted_apply_is_rolled_back_when_a_file_moved_meanwhile(fleet, kb):
    from pipeline.change import apply as applier
    from pipeline.workspace import Workspace

    before = _bytes(fleet)
    _, plan = _plan(kb)
    ws = Workspace.at(fleet)
    folder = fleet / "plans" / plan["id"]
    # simulate the crash: a journal written, two files new, then someone edits a third
    changed = [(i, f) for i, f in enumerate(plan["files"]) if f["status"] == "changed"]
    after = json.loads((folder / "after.json").read_text())
    (folder / "before.json").write_text(json.dumps({str(i): Path(f["path"]).read_text() for i, f in changed}))
    entries = [
        {"key": str(i), "path": f["path"], "display": f["display"], "from": f["sha256_before"], "to": f["sha256_after"]}
        for i, f in changed
    ]
    (folder / "journal.json").write_text(
        json.dumps({"op": "apply", "plan": plan["id"], "to": "after.json", "from": "before.json", "files": entries})
    )
    for i, f in changed[:2]:
        Path(f["path"]).write_text(after[str(i)])
    third = Path(changed[2][1]["path"])
    third.write_text(third.read_text() + "# mine\n")
    lines = applier.recover(ws)
    assert len(lines) == 1 and "rolled back" in lines[0]
    now = _bytes(fleet)
    assert all(now[n] == b for n, b in before.items() if n != third.name)


def test_paths_values_and_predicates():
    assert paths.parse("metadata.labels.team") == ("metadata", "labels", "team")
    assert paths.parse("a.b[0].c") == ("a", "b", 0, "c")
    assert paths.parse(r"metadata.annotations.example\.com/owner") == ("metadata", "annotations", "example.com/owner")
    assert paths.parse("/metadata/annotations/example.com~1owner/0") == (
        "metadata",
        "annotations",
        "example.com/owner",
        0,
    )
    assert parse_value("2.5") == 2.5 and parse_value("'2.5'") == "2.5" and parse_value("yes") == "yes"
    assert parse_value("[a, b]") == ["a", "b"]
    p = parse_where("spec.destination.server^=https://10.")
    assert p.test == "prefix" and p.holds({"spec": {"destination": {"server": "https://10.0.12.4:6443"}}})
    assert parse_where("spec.project").test == "exists"
    assert not parse_where("a=1").holds({"a": True}) and parse_where("a=true").holds({"a": True})


def test_multi_document_json_and_do_no_harm(tmp_path, kb, workspace, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "multi.yaml").write_text(
        "# two apps in one file\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b  # keep\n"
    )
    (tmp_path / "app.json").write_text(
        '{\n    "kind": "Application",\n    "metadata": {\n        "name": "j"\n    }\n}\n'
    )
    (tmp_path / "anchors.yaml").write_text("kind: Application\nbase: &b {x: 1}\nmetadata: *b\n")
    (tmp_path / "scalar.yaml").write_text("kind: Application\nmetadata: plain\n")
    (tmp_path / "flow.yaml").write_text("kind: Application\nmetadata: {name: f,   x: 1}\n")
    r = kb(
        "-w",
        workspace,
        "change",
        "plan",
        "--files",
        "*.yaml",
        "--files",
        "*.json",
        "--where",
        "kind=Application",
        "--set",
        "metadata.labels.team=web",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    plan = {Path(f["path"]).name: f for f in json.loads(r.stdout)["files"]}
    assert plan["multi.yaml"]["status"] == "changed" and plan["multi.yaml"]["edited"] == 1
    assert plan["app.json"]["status"] == "changed"
    assert plan["anchors.yaml"]["status"] == "skipped" and "anchors" in plan["anchors.yaml"]["reason"]
    assert plan["scalar.yaml"]["status"] == "skipped" and "not a mapping" in plan["scalar.yaml"]["reason"]
    assert plan["flow.yaml"]["status"] == "skipped" and "round trip" in plan["flow.yaml"]["reason"]
    pid = json.loads(r.stdout)["id"]
    assert kb("-w", workspace, "change", "apply", pid, "--yes").exit_code == 0
    multi = (tmp_path / "multi.yaml").read_text()
    assert multi.count("team: web") == 1 and "name: b  # keep" in multi and multi.startswith("# two apps")
    assert json.loads((tmp_path / "app.json").read_text())["metadata"]["labels"] == {"team": "web"}
    assert (tmp_path / "app.json").read_text().startswith('{\n    "kind"')  # JSON kept JSON, its indent kept
    replay = workspace / "plans" / pid / "recipe.yaml"
    r = kb("-w", workspace, "change", "plan", "--recipe", replay, "--format", "json")
    assert json.loads(r.stdout)["summary"]["changed"] == 0


def test_guess_indent_styles():
    assert docs.guess_indent("a:\n  b:\n  - x\n") == (2, 2, 0)
    assert docs.guess_indent("a:\n    b:\n      - x\n") == (4, 4, 2)


def test_bad_input_is_exit_1_and_usage_is_2(fleet, kb):
    r = kb("change", "plan", "--files", "nothing/*.yaml", "--set", "a=1")
    assert r.exit_code == 1 and "no file matches" in r.stderr
    r = kb("change", "plan", "do something", "--files", "apps/*.yaml")
    assert r.exit_code == 1 and "LLM" in r.stderr
    r = kb("change", "plan", "--files", "apps/*.yaml", "--set", "a[x]=1")
    assert r.exit_code == 1 and "Hint:" in r.stderr
    assert kb("change", "plan", "--nope").exit_code == 2
