"""A worker SIGKILLed mid-distill: its task comes back to another worker after the (short)
visibility timeout, the final atoms equal a single local run's, and the run log counts each LLM
request once (the loopback fake OpenAI server answers; one request is scripted to hang)."""

from __future__ import annotations

import threading

from pipeline.index.runlog import report as cost_report
from pipeline.jobs import records
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.fakes.distill_model import grounded_model
from tests.fakes.openai_server import OpenAIServer, slow
from tests.jobs.llm_support import INTERVIEWS, llm_workspace, tree, wait_for

pytestmark = needs_extra("workers", "llm")


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
