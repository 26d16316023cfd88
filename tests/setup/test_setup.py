"""kb setup: a validated Argo CD Application from a situation, each value cited or an assumption."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("ruamel.yaml", reason="needs the 'change' extra (ruamel.yaml)")

from tests.change.test_change import SCHEMA, register  # noqa: E402
from tests.paths import REPO_ROOT, TESTS_DATA  # noqa: E402

SAMPLE = REPO_ROOT / "samples" / "argocd" / "atoms"
FILE = "argocd-application.yaml"
PRUNE_QUOTE = "automated sync will not delete resources when Argo CD detects the resource is no longer defined in Git"


@pytest.fixture
def kbase(workspace, monkeypatch):
    shutil.copytree(SAMPLE, workspace / "atoms", dirs_exist_ok=True)
    register(workspace, "deploy/*.yaml")
    monkeypatch.chdir(workspace)
    return workspace


def _validate(path: Path) -> list:
    import jsonschema
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(path.read_text())
    return list(jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(doc))


def _new(kb, *args: str) -> Path:
    r = kb("setup", "new", "deploy the payments api from git into its own namespace", *args)
    assert r.exit_code == 0, r.stderr
    pid = r.stdout.split()[1]
    return Path("proposals") / pid


def test_offline_templates_and_answers_give_valid_and_different_files(kbase, kb, tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"{FILE}:\n  /spec/destination/namespace: payments\n  /metadata/name: payments-api\n")
    a = _new(kb, "--answers", str(answers))
    b = _new(kb, "--set", f"{FILE}:/spec/destination/namespace=search", "--set", f"{FILE}:spec.project=search")
    c = _new(kb)  # defaults only
    assert len({a, b, c}) == 3
    for folder in (a, b, c):
        assert _validate(folder / "files" / FILE) == []
    text_a = (a / "files" / FILE).read_text()
    assert "namespace: payments" in text_a and "name: payments-api" in text_a
    assert "# Argo CD creates the namespace" in text_a  # the template's comments survive
    assert "namespace: search" in (b / "files" / FILE).read_text()
    explain = (a / "EXPLAIN.md").read_text()
    assert '| `/spec/destination/namespace` | `"payments"` | given in your answers |' in explain
    assert "atom `argocd-source-repo-url`" in explain  # a default explained by its interface-input atom
    plan = json.loads((a / "plan.json").read_text())
    assert plan["mode"] == "offline" and plan["cost_usd"] == 0.0 and plan["files"][0]["sha256"]
    r = kb("setup", "new", "x y z", "--set", f"{FILE}:/spec/syncPolicy/automated/prune=yes")
    assert r.exit_code == 3 and "'yes' is not of type 'boolean'" in r.stderr


def _replies():
    from tests.fakes.openai_server import tool_call

    bad = {
        "files": [
            {
                "template": "argocd-application",
                "values": [
                    {
                        "pointer": "/spec/syncPolicy/automated/prune",
                        "value": "yes",
                        "citation": {"atom": "argocd-automated-prune", "quote": "prune is always safe"},
                    }
                ],
            }
        ]
    }
    good = {
        "files": [
            {
                "template": "argocd-application",
                "values": [
                    {
                        "pointer": "/spec/syncPolicy/automated/prune",
                        "value": False,
                        "citation": {"atom": "argocd-automated-prune", "quote": PRUNE_QUOTE},
                    },
                    {"pointer": "/spec/destination/namespace", "value": "payments", "assumption": True},
                ],
            }
        ]
    }
    return tool_call("SetupProposal", bad), tool_call("SetupProposal", good)


def test_llm_invalid_then_valid_reasks_with_the_validators_messages(kbase, kb, monkeypatch):
    from tests.fakes.openai_server import OpenAIServer

    outputs = []
    for _ in range(2):  # same answers + same recorded replies -> byte-identical files
        with OpenAIServer() as server:
            server.push(*_replies())
            monkeypatch.setenv("KB_LLM_BASE_URL", server.base_url)
            folder = _new(kb, "--set", f"{FILE}:/metadata/name=payments-api")
            assert len(server.requests) == 2
            second = json.dumps(server.requests[1]["messages"])
            assert "'yes' is not of type 'boolean'" in second
            assert "does not resolve" in second and "prune is always safe" in second
            outputs.append({p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]
    out = folder / "files" / FILE
    assert _validate(out) == []
    explain = (folder / "EXPLAIN.md").read_text()
    assert f'atom `argocd-automated-prune`: "{PRUNE_QUOTE}"' in explain
    assert '| `/spec/destination/namespace` | `"payments"` | assumption: tune this |' in explain
    plan = json.loads((folder / "plan.json").read_text())
    assert plan["mode"] == "llm" and plan["requests"] == 2 and plan["assumptions"] >= 1
    # every citation resolves to an existing atom and its words
    atoms_text = {p.stem: p.read_text() for p in (kbase / "atoms").rglob("*.md")}
    for line in explain.splitlines():
        if "atom `" in line:
            atom = line.split("atom `")[1].split("`")[0]
            quote = line.split(': "')[1].split('"')[0]
            assert quote in " ".join(atoms_text[atom].split())


def test_setup_apply_goes_through_the_change_engine(kbase, kb):
    folder = _new(kb, "--set", f"{FILE}:/spec/destination/namespace=payments")
    target = kbase / "deploy"
    r = kb("setup", "apply", folder.name, "--to", target, "--yes")
    assert r.exit_code == 0, r.stderr
    assert "+++ b/deploy/" in r.stdout  # the diff comes first
    assert (target / FILE).read_bytes() == (folder / "files" / FILE).read_bytes()
    plan_id = r.stdout.strip().split("kb change rollback ")[1].split()[0]
    (target / FILE).write_text((target / FILE).read_text() + "# tuned by hand\n")
    r = kb("setup", "apply", folder.name, "--to", target, "--yes")
    assert r.exit_code == 1 and "--force" in r.stderr
    assert (target / FILE).read_text().endswith("# tuned by hand\n")
    (target / FILE).write_bytes((folder / "files" / FILE).read_bytes())
    assert kb("change", "rollback", plan_id, "--yes").exit_code == 0
    assert not (target / FILE).exists()  # the apply created it; rollback removes it
    # the file in deploy/ is registered for the schema: kb change plans validate it
    kb("setup", "apply", folder.name, "--to", target, "--yes")
    r = kb("change", "plan", "--files", "deploy/*.yaml", "--set", "spec.revisionHistoryLimit=ten", "--format", "json")
    assert r.exit_code == 3


def test_tools_write_only_proposals_and_plans(kbase):
    from pipeline.config import Settings
    from pipeline.tools import registry
    from pipeline.workspace import Workspace

    setup_tool, change_tool = registry.get("setup_new"), registry.get("change_plan")
    assert (setup_tool.effect, setup_tool.group) == ("proposal", "setup")
    assert (change_tool.effect, change_tool.group) == ("proposal", "change")
    assert not [t for t in registry.all_tools() if "apply" in t.name]
    shutil.copytree(TESTS_DATA / "change" / "apps", kbase / "deploy")
    before = {p: p.read_bytes() for p in kbase.rglob("*") if p.is_file()}
    ctx = registry.ToolContext(settings=Settings.load(kbase), workspace=Workspace.at(kbase))
    out = registry.call("setup_new", ctx, {"situation": "payments app", "answers": {FILE: {"/spec/project": "pay"}}})
    assert out["id"].startswith("setup-") and "given in your answers" in out["explain"]
    out = registry.call("change_plan", ctx, {"files": ["deploy/*.yaml"], "set": ["metadata.labels.tier=web"]})
    assert out["summary"]["changed"] == 30 and out["apply_with"].startswith("kb change apply ")
    after = {p: p.read_bytes() for p in kbase.rglob("*") if p.is_file()}
    new_or_changed = [p for p in after if before.get(p) != after[p]]
    assert new_or_changed and all(p.relative_to(kbase).parts[0] in ("proposals", "plans") for p in new_or_changed)


def test_check_resolves_applies_to(kbase, kb):
    bad = kbase / "atoms" / "interface-input" / "typo.md"
    text = (SAMPLE / "interface-input" / "argocd-automated-prune.md").read_text()
    bad.write_text(
        text.replace("id: argocd-automated-prune", "id: typo")
        .replace("pointer: /spec/syncPolicy/automated/prune", "pointer: /spec/syncPolicy/automatic/prune")
        .replace('title: "Automated sync pruning"', 'title: "Typo"')
    )
    r = kb("check", "--format", "json")
    findings = [f for f in json.loads(r.stdout)["findings"] if f["rule"] == "applies-to"]
    assert len(findings) == 1 and "no 'automatic'" in findings[0]["message"] and findings[0]["path"].endswith("typo.md")
    bad.write_text(
        text.replace("id: argocd-automated-prune", "id: typo").replace("schema: argocd-application", "schema: nope")
    )
    r = kb("check", "--format", "json")
    findings = [f for f in json.loads(r.stdout)["findings"] if f["rule"] == "applies-to"]
    assert len(findings) == 1 and "not registered" in findings[0]["message"]


def _atom(path: Path, head: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\n{head}created: 2026-12-01\nsources:\n  - document: docs/x.md\n    heading: X\n---\n"
        f"> the words.\n\n{body}"
    )


def test_cross_file_references_are_checked(workspace, kb, monkeypatch):
    monkeypatch.chdir(workspace)
    configs = workspace / "schemas" / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    obj = {"type": "object", "properties": {"name": {"type": "string"}, "project": {"type": "string"}}}
    (configs / "app.json").write_text(json.dumps(obj))
    (configs / "project.json").write_text(json.dumps(obj))
    for name, value in (("app", "project: default\nname: web\n"), ("project", "name: default\n")):
        _atom(
            workspace / "atoms" / "config-template" / f"{name}-file.md",
            f"id: {name}-file\ntitle: {name} file\ntype: config-template\nconfig_schema: {name}\n",
            f"## Template\n\n```yaml\n{value}```\n",
        )
    _atom(
        workspace / "atoms" / "interface-input" / "app-project.md",
        "id: app-project\ntitle: App project\ntype: interface-input\napplies_to:\n  - schema: app\n"
        "    pointer: /project\n    refers_to: {schema: project, pointer: /name}\n",
        "## What it is\n\nx\n",
    )
    assert _new_ok(kb, "--set", "app-file.yaml:/project=default")
    r = kb("setup", "new", "web app", "--set", "app-file.yaml:/project=ops")
    assert r.exit_code == 3 and '/project = "ops" names no /name of the project files' in r.stderr


def _new_ok(kb, *args: str) -> bool:
    r = kb("setup", "new", "web app", *args)
    assert r.exit_code == 0, r.stderr
    return True
