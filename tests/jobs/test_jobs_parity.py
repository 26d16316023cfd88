"""``kb run`` and ``kb run --via celery`` (real ``kb worker`` processes on a real redis-server) give
byte-identical atoms, the same transcript.json files and the same bundle checksum on the shipped
sample, and the tasks ran in the worker processes, not in the submitting one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from pipeline.jobs import records
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.paths import REPO_ROOT

pytestmark = [needs_extra("workers", "embed", "site"), pytest.mark.slow]


def sample_workspace(kb, root: Path) -> Path:
    assert kb("init", root, "--no-git").exit_code == 0
    shutil.copytree(REPO_ROOT / "interviews", root / "interviews", dirs_exist_ok=True)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def bundle_checksum(ws: Path) -> str:
    (manifest,) = (ws / "dist").glob("*.manifest.json")
    return json.loads(manifest.read_text(encoding="utf-8"))["checksum"]


def test_celery_run_equals_local_run(kb, tmp_path, workers):
    remote = sample_workspace(kb, tmp_path / "remote")
    a = workers.start(remote, "--queues", "asr,diarise", "-c", "1")  # they start while the local run runs
    port = free_port()
    metrics_dir = tmp_path / "metrics"  # the pool processes' counters (kb worker makes a temp one otherwise)
    metrics_dir.mkdir()
    queues = ("--queues", "llm,index", "-c", "1", "--metrics-port", str(port))
    b = workers.start(remote, *queues, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))

    local = sample_workspace(kb, tmp_path / "local")
    res = kb("-w", local, "run")
    assert res.exit_code in (0, 3), res.stderr  # 3: kb check found errors (then both runs must say so)
    local_code = res.exit_code
    # the embedding cache is keyed by model and text: sharing it only saves loading the model twice
    shutil.copytree(local / ".kb" / "embeddings", remote / ".kb" / "embeddings")
    res = kb("-w", remote, "run", "--via", "celery", "--broker", workers.broker)
    assert res.exit_code == local_code, res.stderr + workers.logs()
    run_id = res.stdout.split("run id: ", 1)[1].split()[0]
    for step in ("distill:", "check:", "site:", "export:"):
        assert step in res.stdout, res.stdout

    assert tree(remote / "atoms") == tree(local / "atoms")
    for iid in os.listdir(REPO_ROOT / "interviews"):
        path = Path("interviews") / iid / "transcript.json"
        assert (remote / path).read_bytes() == (local / path).read_bytes()
    assert bundle_checksum(remote) == bundle_checksum(local)

    st = records.status(Workspace.at(remote, discover=False), run_id)
    assert st.outcome == "done" and st.finished == st.total
    by_stage = {stage: {rec["ppid"] for (s, _), rec in st.tasks.items() if s == stage} for stage in records.STAGES}
    assert by_stage["transcribe"] == by_stage["diarise"] == {a.pid}, st.tasks  # in worker a's pool, nowhere else
    assert by_stage["distill"] == {b.pid} and by_stage["finalize"] == {b.pid}
    assert all(rec["pid"] != os.getpid() for rec in st.tasks.values())

    # kb worker's /metrics: jobs by stage and outcome (merged over its pool processes), queue depth
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'kb_jobs_total{outcome="done",stage="finalize"} 1.0' in metrics, metrics
    assert 'kb_jobs_total{outcome="skipped",stage="distill"} 2.0' in metrics  # extractive: nothing per interview
    assert 'kb_jobs_queue_depth{queue="llm"} 0.0' in metrics

    # the run's progress, and the same run again: every step fresh, nothing rewritten
    status = kb("-w", remote, "jobs", "status", run_id)
    assert status.exit_code == 0 and "done" in status.stdout, status.stderr
    before = tree(remote / "atoms")
    again = kb("-w", remote, "run", "--via", "celery", "--broker", workers.broker)
    assert again.exit_code == local_code, again.stderr + workers.logs()
    assert tree(remote / "atoms") == before
    new_run = again.stdout.split("run id: ", 1)[1].split()[0]
    st2 = records.status(Workspace.at(remote, discover=False), new_run)
    assert {st2.state(s, i) for i in st2.interviews for s in ("transcribe", "diarise")} == {"skipped"}
