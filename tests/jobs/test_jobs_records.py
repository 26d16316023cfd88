"""The run's records on the workspace: a redelivered request rewrites its record, the ledger merge
counts once, and task ids follow the inputs and settings that kb run's freshness hashes."""

from __future__ import annotations

import shutil

from pipeline.config import Settings
from pipeline.index.runlog import merge_run
from pipeline.index.runlog import report as cost_report
from pipeline.jobs import app as jobs_app
from pipeline.jobs import records
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.paths import REPO_ROOT

pytestmark = needs_extra("workers")


def test_a_redelivered_request_is_counted_once(workspace):
    ws = Workspace.at(workspace, discover=False)
    run = records.new_run_id()
    records.write_run(ws, run, {"interviews": ["a"]})
    usage = {"interview": "a", "tokens_in": 10, "tokens_out": 5, "cost_usd": 0.001, "reask": False, "retries": 0}
    for _attempt in range(2):  # the same task id, window and request number: the same record
        records.record_request(ws, run, "distill-x", 0, 0, {**usage, "window": 0})
    records.record_request(ws, run, "distill-x", 1, 0, {**usage, "window": 1})
    found = records.requests(ws, run)
    assert len(found) == 2
    for _merge in range(2):  # a redelivered callback merges again
        merge_run(ws.run_log, run, found, backend="llm", model="m", prompt="p", status="ok", interviews=1)
    rep = cost_report(ws.run_log, run_id=run)
    assert rep.totals["requests"] == 2 and rep.totals["tokens_in"] == 20
    assert len(rep.runs) == 1 and rep.runs[0]["windows"] == 2


def test_task_ids_follow_inputs_and_settings(workspace):
    shutil.copytree(REPO_ROOT / "interviews", workspace / "interviews", dirs_exist_ok=True)
    ws = Workspace.at(workspace, discover=False)
    iid = ws.interview_ids()[0]
    base = Settings.load(workspace)
    ids = jobs_app.task_ids(base, ws, iid, False)
    assert ids == jobs_app.task_ids(Settings.load(workspace), ws, iid, False)  # stable: a resubmission is the same task
    assert [ids[s].split("-")[0] for s in ("transcribe", "diarise", "distill")] == ["transcribe", "diarise", "distill"]
    other = Settings.load(workspace, **{"distill.pairs_per_atom": 3})
    changed = jobs_app.task_ids(other, ws, iid, False)
    assert changed["transcribe"] == ids["transcribe"] and changed["diarise"] == ids["diarise"]
    assert changed["distill"] != ids["distill"]  # only distillation's settings changed
    diarised = jobs_app.task_ids(Settings.load(workspace, **{"diarise.smoothing_s": 0.9}), ws, iid, False)
    assert diarised == ids  # an imported transcript does not depend on diarisation (a recording's would)
    broker = Settings.load(workspace, **{"workers.broker_url": "redis://elsewhere:6379/0"})
    assert jobs_app.task_ids(broker, ws, iid, False) == ids  # where the broker is does not shape outputs
    (ws.interview_dir(iid) / "interview.yaml").write_text(
        (ws.interview_dir(iid) / "interview.yaml").read_text(encoding="utf-8").replace("title: ", "title: New ", 1),
        encoding="utf-8",
    )
    assert jobs_app.task_ids(base, ws, iid, False)["transcribe"] != ids["transcribe"]  # people/title: transcript inputs
