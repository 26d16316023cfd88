"""The transcribe step as two tasks: asr (a recording's ASR output into its intermediate file) on
one worker, diarise (diarisation + speaker assignment -> transcript.json) on another. A tiny real
faster-whisper model (built at test time) and the channel diariser run on a stereo recording; an
imported transcript beside it has nothing to diarise. Both give the transcript.json a local
``kb transcribe`` gives, and a redelivered task finds its output and returns."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.config import Settings
from pipeline.jobs import records, tasks
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.fakes.tiny_whisper import TINY, build_tiny_whisper
from tests.paths import REPO_ROOT

pytestmark = needs_extra("workers", "asr")

STEREO = REPO_ROOT / "tests" / "data" / "asr" / "stereo_diarization.wav"
IMPORTED = "shipit-59-postgres-vs-sqlite-litestream"


def speech_workspace(kb, root: Path, model: Path) -> Path:
    assert kb("init", root, "--no-git").exit_code == 0
    res = kb("-w", root, "add", STEREO, "--id", "stereo-call", "--title", "A call", "--date", "2026-03-04")
    assert res.exit_code == 0, res.stderr
    shutil.copytree(REPO_ROOT / "interviews" / IMPORTED, root / "interviews" / IMPORTED)
    cfg = yaml.safe_load((root / "kb.yaml").read_text(encoding="utf-8")) or {}
    cfg["asr"] = {**(cfg.get("asr") or {}), "model": str(model), **{k.split(".", 1)[1]: v for k, v in TINY.items()}}
    cfg["diarise"] = {**(cfg.get("diarise") or {}), "backend": "channels"}
    (root / "kb.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("asr") / "tiny-whisper")


def test_asr_and_diarise_run_apart_and_equal_kb_transcribe(kb, tmp_path, workers, model):
    remote = speech_workspace(kb, tmp_path / "remote", model)
    a = workers.start(remote, "--queues", "asr", "-c", "1")  # they start while the local run runs
    b = workers.start(remote, "--queues", "diarise,index", "-c", "1")
    local = speech_workspace(kb, tmp_path / "local", model)
    res = kb("-w", local, "transcribe")
    assert res.exit_code == 0, res.stderr
    res = kb("-w", remote, "run", "--via", "celery", "--only", "transcribe", "--broker", workers.broker)
    assert res.exit_code == 0, res.stderr + workers.logs()
    run_id = res.stdout.split("run id: ", 1)[1].split()[0]

    for iid in ("stereo-call", IMPORTED):
        path = Path("interviews") / iid / "transcript.json"
        assert (remote / path).read_bytes() == (local / path).read_bytes(), iid
    ws = Workspace.at(remote, discover=False)
    (stored,) = (remote / ".kb" / "state" / "transcribe" / "asr").glob("stereo-call--*.json")
    assert stored.name == next((local / ".kb" / "state" / "transcribe" / "asr").glob("*.json")).name  # same key

    st = records.status(ws, run_id)
    assert st.outcome == "done" and st.finished == st.total == 5, st.tasks  # 2 x (asr, diarise) + the callback
    audio_asr, audio_dz = st.tasks[("transcribe", "stereo-call")], st.tasks[("diarise", "stereo-call")]
    assert (audio_asr["ppid"], audio_asr["state"], audio_asr["summary"]) == (a.pid, "done", "ASR output written")
    assert (audio_dz["ppid"], audio_dz["state"], audio_dz["kind"]) == (b.pid, "done", "audio")
    imported = st.tasks[("diarise", IMPORTED)]
    assert (imported["ppid"], imported["state"]) == (b.pid, "skipped")
    assert imported["summary"] == "imported transcript: nothing to diarise"
    assert st.tasks[("transcribe", IMPORTED)]["summary"] == "transcript imported"

    # a redelivered task (the same job again, here in this process) finds its output and returns
    before = {p: p.stat().st_mtime_ns for p in (stored, remote / "interviews" / "stereo-call" / "transcript.json")}
    job = {"workspace": str(remote.resolve()), "run": run_id, "force": False, "interview": "stereo-call",
           "settings": tasks.settings_sha(Settings.load(remote))}  # fmt: skip
    assert tasks.transcribe(dict(job))["ok"] and tasks.diarise({"ok": True}, dict(job))["ok"]
    assert {p: p.stat().st_mtime_ns for p in before} == before
    st = records.status(ws, run_id)
    for stage in ("transcribe", "diarise"):
        rec = st.tasks[(stage, "stereo-call")]
        assert (rec["state"], rec["attempts"], rec["pid"]) == ("skipped", 2, os.getpid()), rec

    # kb jobs retry from the diarise stage: diarise (and the callback) again on worker b, not asr
    res = kb("-w", remote, "jobs", "retry", run_id, "--stage", "diarise", "--broker", workers.broker)
    assert res.exit_code == 0, res.stderr + workers.logs()
    st = records.status(ws, run_id)
    assert st.outcome == "done"
    assert (st.tasks[("diarise", "stereo-call")]["attempts"], st.tasks[("diarise", "stereo-call")]["ppid"]) == (
        3,
        b.pid,
    )
    assert st.tasks[("transcribe", "stereo-call")]["attempts"] == 2


def test_forced_asr_is_redone_once_per_run(kb, tmp_path, model):
    """--force redoes ASR; the same forced run's redelivered asr task reuses what it wrote."""
    from pipeline.reporting import Reporter
    from pipeline.stages import transcribe as stage

    root = speech_workspace(kb, tmp_path / "ws", model)
    ws, settings = Workspace.at(root, discover=False), Settings.load(root)
    assert stage.recognise_one(settings, ws, Reporter(), "stereo-call") == ("audio", "recognised")
    assert stage.recognise_one(settings, ws, Reporter(), "stereo-call") == ("audio", "cached")
    forced = stage.recognise_one(settings, ws, Reporter(), "stereo-call", force=True, run_id="r1")
    assert forced == ("audio", "recognised")  # an earlier run's output is not this forced run's
    again = stage.recognise_one(settings, ws, Reporter(), "stereo-call", force=True, run_id="r1")
    assert again == ("audio", "cached")
    assert stage.recognise_one(settings, ws, Reporter(), IMPORTED) == ("import", "transcribed")
