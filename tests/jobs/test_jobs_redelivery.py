"""A worker SIGKILLed mid-distill: its task comes back to another worker after the (short)
visibility timeout, the final atoms equal a single local run's, and the run log counts each LLM
request once (the loopback fake OpenAI server answers; one request is scripted to hang)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipeline.index.runlog import report as cost_report
from pipeline.jobs import records
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.fakes.distill_model import excerpt, grounded_model, make_workspace
from tests.fakes.openai_server import OpenAIServer, slow

pytestmark = needs_extra("workers", "llm")

INTERVIEWS = ("ship-it-59", "ship-it-59-loud")


def shouted(tr):
    """The same interview in capitals: other text, so its windows are not the first one's cache hits."""
    data = tr.model_dump()
    for seg in data["segments"]:
        seg["text"] = seg["text"].upper()
        for word in seg.get("words") or []:
            word["text"] = word["text"].upper()
    return type(tr).model_validate(data)


def llm_workspace(root: Path, base_url: str) -> Path:
    tr = excerpt()
    make_workspace(
        root,
        {INTERVIEWS[0]: tr.model_copy(update={"interview": INTERVIEWS[0]}),
         INTERVIEWS[1]: shouted(tr).model_copy(update={"interview": INTERVIEWS[1]})},
    )  # fmt: skip
    (root / "kb.yaml").write_text(
        f"llm:\n  base_url: {base_url}\n  backoff_s: 0.01\n  timeout_s: 60\n"
        "distill:\n  backend: llm\n  window_tokens: 500\n"  # four windows per interview
        "workers:\n  visibility_timeout_s: 15\n  soft_time_limit_s: 11\n  time_limit_s: 13\n",
        encoding="utf-8",
    )
    return root


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_for(what, timeout: float, why: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(why)


def test_sigkill_mid_distill_is_redelivered_and_counted_once(kb, tmp_path, workers):
    with OpenAIServer(grounded_model) as ref_server:
        single = llm_workspace(tmp_path / "single", ref_server.base_url)
        res = kb("-w", single, "run", "--only", "distill")
        assert res.exit_code in (0, 3), res.stderr
    single_requests = cost_report(Workspace.at(single, discover=False).run_log).totals["requests"]
    assert single_requests == 8  # 2 interviews x 4 windows, no re-asks

    hanging = threading.Event()
    seen = {"n": 0}

    def model(request):
        seen["n"] += 1
        if seen["n"] == 2:  # the second window of the first interview hangs: the worker dies meanwhile
            hanging.set()
            return slow(30, grounded_model(request))
        return grounded_model(request)

    with OpenAIServer(model) as server:
        ws = llm_workspace(tmp_path / "celery", server.base_url)
        first = workers.start(ws, "--queues", "llm,index", "-c", "1")
        res = kb("-w", ws, "run", "--via", "celery", "--only", "distill", "--no-wait", "--broker", workers.broker)
        assert res.exit_code == 0, res.stderr
        run_id = res.stdout.split("run id: ", 1)[1].split()[0]
        wait_for(hanging.is_set, 60, "no request reached the fake model\n" + workers.logs())
        workers.kill(first)  # SIGKILL to the worker and its pool process, mid-request

        second = workers.start(ws, "--queues", "llm,index", "-c", "1")
        kws = Workspace.at(ws, discover=False)
        st = wait_for(
            lambda: (s := records.status(kws, run_id)).outcome in ("done", "failed") and s,
            90,
            "the run did not finish after the redelivery\n" + workers.logs(),
        )
        assert st.outcome == "done", st.tasks
        received = len(server.requests)

    assert tree(ws / "atoms") == tree(single / "atoms")
    killed = st.tasks[("distill", INTERVIEWS[0])]
    assert killed["attempts"] == 2 and killed["ppid"] == second.pid, killed
    ledger = cost_report(kws.run_log, run_id=run_id)
    assert ledger.totals["requests"] == single_requests  # each completed request once
    assert cost_report(kws.run_log).totals["requests"] == single_requests  # the callback's own distill asked nothing
    assert received == single_requests + 1  # the one in flight when the worker died was never answered
    assert {(r["interview"], r["requests"]) for r in ledger.interviews} == {(i, 4) for i in INTERVIEWS}
