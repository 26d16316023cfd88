"""``kb ask`` (in-process CLI) and ``kb serve`` (a real subprocess on a free port, SIGHUP reload)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.paths import REPO_ROOT
from tests.service.test_service import REAL_ATOM, REAL_QUESTION, built, export_bundle, free_port, make_workspace  # noqa: F401

httpx = pytest.importorskip("httpx")


def test_ask_human_output_shows_two_hop_citations(kb, built):  # noqa: F811
    ws, bundle, _ = built
    r = kb(
        "--workspace",
        ws,
        "ask",
        "Can chaos experiments run automatically after Argo CD upgrades an app?",
        "--bundle",
        bundle,
    )
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "Uncertain: no" in out
    assert "Citations:" in out
    assert (
        "1. Run chaos experiments as sanity checks after an Argo CD sync  [run-chaos-checks-after-an-argo-cd-sync]"
        in out
    )
    assert 'Karthik Satchitanand: "whenever Argo CD upgrades your application' in out
    assert "(interview ship-it-14, 00:37:50-00:38:10)" in out


def test_ask_document_citation_and_json(kb, built):  # noqa: F811
    ws, bundle, _ = built
    r = kb("--workspace", ws, "ask", REAL_QUESTION, "--bundle", bundle, "--format", "json", "--k", "3")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["uncertain"] is False and data["mode"] == "extractive"
    assert data["citations"][0]["atom_id"] == REAL_ATOM
    assert data["signals"]["score"] >= data["threshold"] and data["evidence"] == data["signals"]["evidence"]
    r = kb("--workspace", ws, "ask", REAL_QUESTION, "--bundle", bundle)
    assert "argocd-docs/faq.md § I forgot the admin password, how do I reset it? (line 48)" in r.stdout


def test_ask_off_topic_says_uncertain(kb, built):  # noqa: F811
    ws, bundle, _ = built
    r = kb("--workspace", ws, "ask", "Who won the football world cup in 2014?", "--bundle", bundle)
    assert r.exit_code == 0
    assert "Uncertain: YES" in r.stdout and "why: " in r.stdout and "Citations:" not in r.stdout


def test_ask_default_bundle_is_newest_in_dist(kb, built, tmp_path):  # noqa: F811
    ws = make_workspace(tmp_path / "ws")
    r = kb("--workspace", ws, "ask", REAL_QUESTION)
    assert r.exit_code == 1
    assert "Error: No bundle (kb-*.duckdb) in" in r.stderr and "kb export" in r.stderr
    export_bundle(ws, ws / "dist" / "kb-0.1.0.duckdb")
    r = kb("--workspace", ws, "ask", REAL_QUESTION, "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["citations"][0]["atom_id"] == REAL_ATOM


def test_serve_refuses_a_bad_bundle_with_exit_1(kb, tmp_path):
    bad = tmp_path / "kb-bad.duckdb"
    bad.write_bytes(b"this is not a bundle")
    r = kb("serve", "--bundle", bad)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: ") and "Hint: " in r.stderr


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP needs a POSIX system")
def test_kb_serve_subprocess_answers_and_reloads_on_sighup(built, tmp_path):  # noqa: F811
    ws = make_workspace(tmp_path / "ws")
    dist = ws / "dist"
    export_bundle(ws, dist / "kb-1.duckdb")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--workspace",
            str(ws),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kb serve did not start"
            time.sleep(0.2)
        health = httpx.get(url + "/healthz").json()
        assert health["bundle"]["path"].endswith("kb-1.duckdb")  # the newest in the workspace's dist/
        r = httpx.post(url + "/v1/ask", json={"question": REAL_QUESTION}, timeout=30).json()
        assert r["citations"][0]["atom_id"] == REAL_ATOM

        export_bundle(ws, dist / "kb-2.duckdb")
        time.sleep(0.05)
        os.utime(dist / "kb-2.duckdb")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while not httpx.get(url + "/healthz").json()["bundle"]["path"].endswith("kb-2.duckdb"):
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode in (0, -signal.SIGTERM), err.decode()
    assert "Serving " in err.decode() and "/v1/ask" in err.decode()
    # its own log lands where `kb ops ask` on system kb reads (serve.log_file: auto), parsed with time and level
    from pipeline.ops.manifest import kb_manifest
    from pipeline.ops.sources import search_logs

    log = (ws / ".kb" / "logs" / "serve.log").read_text(encoding="utf-8")
    assert "kb.serve: kb serve: now serving" in log and "kb-2.duckdb" in log
    hits = search_logs(ws, kb_manifest(ws), query="now serving")["hits"]
    assert hits and hits[-1]["level"] == "warning" and hits[-1]["time"]


def test_demo_ask_script_serves_asks_and_stops(built):  # noqa: F811
    ws, bundle, _ = built
    out = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "demo_ask.py"),
            REAL_QUESTION,
            "--bundle",
            str(bundle),
            "--workspace",
            str(ws),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("KB_")},
    )
    assert out.returncode == 0, out.stderr
    assert "Uncertain: no" in out.stdout
    assert f"[{REAL_ATOM}]" in out.stdout and "argocd-docs/faq.md § I forgot the admin password" in out.stdout


def test_ask_with_an_llm_configured_gives_a_grounded_answer(kb, built, monkeypatch):  # noqa: F811
    from tests.fakes.openai_server import OpenAIServer, text

    ws, bundle, _ = built
    with OpenAIServer() as fake:
        fake.push(text(f"Read it from the argocd-initial-admin-secret secret [{REAL_ATOM}]."))
        monkeypatch.setenv("KB_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("KB_LLM_HTTP_RETRIES", "0")
        r = kb("--workspace", ws, "ask", REAL_QUESTION, "--bundle", bundle, "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["mode"] == "llm" and data["uncertain"] is False
    assert data["answer"].startswith("Read it from the argocd-initial-admin-secret")
    assert [c["atom_id"] for c in data["citations"]] == [REAL_ATOM]
    # calibrated on this bundle's own held-out questions, or the measured default when it has too few
    assert data["threshold_source"] in ("bundle", "default")


def test_serve_on_a_taken_port_is_exit_1(kb, built):  # noqa: F811
    import socket

    ws, bundle, _ = built
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = kb("--workspace", ws, "serve", "--bundle", bundle, "--port", port, "--log-level", "critical")
    assert r.exit_code == 1
    assert f"Error: Could not serve on 127.0.0.1:{port}" in r.stderr and "Hint: " in r.stderr


def test_serve_log_file_setting_resolves_and_refuses_an_unwritable_path(tmp_path):
    from pipeline.errors import KbError
    from pipeline.service.server import log_config, log_file_path

    assert log_file_path("auto", tmp_path) == tmp_path / ".kb" / "logs" / "serve.log"
    assert log_file_path("auto", None) is None and log_file_path("off", tmp_path) is None
    (tmp_path / "ro" / ".kb").mkdir(parents=True)
    (tmp_path / "ro" / ".kb" / "logs").write_text("not a folder")  # auto is best effort: no log, no failure
    assert log_file_path("auto", tmp_path / "ro") is None
    assert log_file_path("logs/kb.log", tmp_path) == tmp_path / "logs" / "kb.log"
    config = log_config(tmp_path / "logs" / "kb.log")
    assert "file" in config["loggers"]["uvicorn"]["handlers"] and config["loggers"]["kb"]["handlers"] == ["file"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(KbError, match="cannot write its log file") as exc:
        log_config(tmp_path / "file" / "serve.log")
    assert "serve.log_file" in exc.value.hint
