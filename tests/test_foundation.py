"""The foundation: settings precedence, atomic writes, freshness, schemas, and CLI basics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.stages import schemas as schemas_stage
from pipeline.workspace import Freshness, Workspace, atomic_write_text, find_workspace

REPO = Path(__file__).resolve().parents[1]


def test_settings_precedence_flags_over_env_over_yaml(tmp_path, monkeypatch):
    (tmp_path / "kb.yaml").write_text("llm:\n  model: from-yaml\n  temperature: 0.5\nthreads: 2\n")
    monkeypatch.setenv("KB_LLM_MODEL", "from-env")
    monkeypatch.setenv("KB_LLM_BASE_URL", "http://env")
    s = Settings.load(tmp_path, **{"llm.base_url": "http://flag", "llm.timeout_s": None})
    assert s.llm.base_url == "http://flag"  # flag beats env
    assert s.llm.model == "from-env"  # env beats yaml
    assert s.llm.temperature == 0.5  # yaml beats default
    assert s.threads == 2
    assert s.llm.timeout_s == 120.0  # None flags are ignored


def test_kb_yaml_refuses_secrets_and_unknown_keys(tmp_path):
    (tmp_path / "kb.yaml").write_text("llm:\n  api_key: sk-123\n")
    with pytest.raises(ConfigError, match="looks like a secret"):
        Settings.load(tmp_path)
    (tmp_path / "kb.yaml").write_text("llm:\n  modle: x\n")
    with pytest.raises(ConfigError, match="llm.modle"):
        Settings.load(tmp_path)
    (tmp_path / "kb.yaml").write_text("llm: [\n")
    with pytest.raises(ConfigError, match=r"kb.yaml:\d+"):
        Settings.load(tmp_path)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "f.txt"
    atomic_write_text(target, "one")

    class Boom(Exception):
        pass

    import pipeline.workspace as wsmod

    real = wsmod.os.replace

    def failing_replace(src, dst):
        raise Boom()

    wsmod.os.replace = failing_replace
    try:
        with pytest.raises(Boom):
            atomic_write_text(target, "two")
    finally:
        wsmod.os.replace = real
    assert target.read_text() == "one"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_freshness_records_inputs(tmp_path):
    fresh = Freshness(tmp_path / "state")
    assert not fresh.is_fresh("x/y", {"a": 1})
    fresh.record("x/y", {"a": 1})
    assert fresh.is_fresh("x/y", {"a": 1})
    assert not fresh.is_fresh("x/y", {"a": 2})


def test_find_workspace_walks_up(tmp_path):
    (tmp_path / "kb.yaml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace(deep) == tmp_path.resolve()


def test_committed_schemas_are_fresh():
    expected = schemas_stage.render_all()
    for name, text in expected.items():
        path = REPO / "schemas" / name
        assert path.is_file(), f"schemas/{name} missing: run 'make schemas'"
        assert path.read_text(encoding="utf-8") == text, f"schemas/{name} is stale: run 'make schemas'"


def test_kb_help_imports_no_heavy_library():
    code = (
        "import sys; from pipeline.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch','faster_whisper','whisperx','pyannote','sentence_transformers',"
        "'instructor','openai','fastapi','uvicorn','mkdocs','duckdb','onnxruntime','ctranslate2') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_init_scaffolds_a_workspace_and_refuses_twice(tmp_path, kb):
    ws = tmp_path / "kb1"
    r = kb("init", ws)
    assert r.exit_code == 0
    for rel in [
        "kb.yaml",
        "mkdocs.yml",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".github/workflows/kb.yml",
        "interviews",
        "atoms/error",
    ]:
        assert (ws / rel).exists(), rel
    again = kb("init", ws)
    assert again.exit_code == 1
    assert "Error: " in again.stderr and "already a workspace" in again.stderr
    assert "Hint: " in again.stderr


def test_global_workspace_option_and_config_json(tmp_path, kb, workspace):
    (workspace / "kb.yaml").write_text("threads: 3\n")
    r = kb("--workspace", workspace, "config")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["threads"] == 3


def test_missing_workspace_is_a_clear_error(tmp_path, kb):
    r = kb("--workspace", tmp_path / "nope", "config")
    assert r.exit_code == 1
    assert "does not exist" in r.stderr and "kb init" in r.stderr


def test_usage_error_exits_2(kb):
    assert kb("no-such-command").exit_code == 2


def test_workspace_paths(tmp_path):
    ws = Workspace.at(tmp_path)
    assert ws.atom_path("error", "x") == tmp_path.resolve() / "atoms" / "error" / "x.md"
    assert ws.relative(tmp_path / "atoms" / "a.md") == "atoms/a.md"


def test_secret_env_vars_load_masked(tmp_path, monkeypatch, kb):
    monkeypatch.setenv("KB_SERVE_API_KEY", "s3cret-serve")
    monkeypatch.setenv("KB_LLM_API_KEY", "s3cret-llm")
    s = Settings.load(tmp_path)
    assert s.serve.api_key.get_secret_value() == "s3cret-serve"
    assert s.llm.api_key.get_secret_value() == "s3cret-llm"
    r = kb("--workspace", tmp_path, "config")
    assert r.exit_code == 0 and "s3cret" not in r.stdout


def test_help_lists_commands_in_the_order_a_user_meets_them(kb):
    from pipeline.cli import COMMAND_ORDER

    out = kb("--help").stdout
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.startswith("  ")]
    assert listed == [name for name in COMMAND_ORDER if name in listed]
    assert listed[0] == "init" and set(COMMAND_ORDER) <= set(listed)
