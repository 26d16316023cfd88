"""One Celery run per workspace: a second ``kb run --via celery`` is refused while the first holds
the workspace (its run id and ``kb jobs status`` named), ``--wait-turn`` starts after it, the
callback releases the workspace, and a lock whose run is recorded as finished is taken over."""

from __future__ import annotations

import subprocess
import sys
import time

from pipeline.config import Settings
from pipeline.jobs import app as jobs_app
from pipeline.jobs import guard, records
from pipeline.workspace import Workspace
from tests.extras import needs_extra

pytestmark = needs_extra("workers")


def run_id_of(stdout: str) -> str:
    return stdout.split("run id: ", 1)[1].split()[0]


def test_second_run_is_refused_or_waits_its_turn(kb, workspace, workers):
    ws = Workspace.at(workspace, discover=False)
    first = kb("-w", workspace, "run", "--via", "celery", "--only", "check", "--no-wait", "--broker", workers.broker)
    assert first.exit_code == 0, first.stderr
    r1 = run_id_of(first.stdout)  # no worker yet: it holds the workspace, queued

    refused = kb("-w", workspace, "run", "--via", "celery", "--only", "check", "--broker", workers.broker)
    assert refused.exit_code == 1
    assert f"Another Celery run, {r1}, is still running" in refused.stderr
    assert f"kb jobs status {r1}" in refused.stderr and "--wait-turn" in refused.stderr
    assert records.runs(ws) == [r1]  # nothing was sent for the refused one

    second = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "-w", str(workspace), "run", "--via", "celery", "--only", "check",
         "--wait-turn", "--no-wait", "--broker", workers.broker],
        env=workers.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.5)
    assert second.poll() is None  # waiting its turn
    workers.start(workspace, "--queues", "index", "-c", "1")
    out, err = second.communicate(timeout=90)
    assert second.returncode == 0, err + workers.logs()
    assert f"waiting for run {r1} to finish" in err
    r2 = run_id_of(out)
    deadline = time.monotonic() + 60
    while records.status(ws, r2).outcome != "done":
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.2)
    done1 = records.status(ws, r1).tasks[("finalize", "_run")]
    assert records.status(ws, r1).outcome == "done"
    assert done1["finished"] <= records.status(ws, r2).tasks[("finalize", "_run")]["started"]

    app = jobs_app.make_app(Settings.load(workspace), workers.broker)
    try:
        root = str(workspace.resolve())
        assert guard.holder(app, root) is None  # the callback released it
        # a lock left behind by a run that is recorded as finished (its callback was killed) is stale
        assert guard.try_acquire(app, root, r1, 60) is None
        third = kb("-w", workspace, "run", "--via", "celery", "--only", "check", "--broker", workers.broker)
        assert third.exit_code == 0, third.stderr + workers.logs()
        assert guard.holder(app, root) is None
        # a live holder is never released by another run's id
        assert guard.try_acquire(app, root, "someone", 60) is None
        assert not guard.release(app, root, r1) and guard.holder(app, root) == "someone"
    finally:
        app.close()
