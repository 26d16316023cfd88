"""``distill.max_cost_usd`` is one budget for a whole Celery run: two workers distilling two
interviews stop after the requests it allows, together (the loopback fake OpenAI server answers
with a fixed usage, so each request costs exactly its estimate), and the run says why."""

from __future__ import annotations

import time

from pipeline.index.runlog import report as cost_report
from pipeline.jobs import records
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.fakes.distill_model import grounded_model
from tests.fakes.openai_server import OpenAIServer
from tests.jobs.llm_support import INTERVIEWS, llm_workspace

pytestmark = needs_extra("workers", "llm")

# price only what the model writes: 1000 tokens at $10 per million = $0.01, the estimate and the cost
PRICES = {"price_in_per_1m": 0.0, "price_out_per_1m": 10.0, "max_output_tokens": 1000}
ALLOWED = 3
BUDGET = 0.035  # 3 x $0.01 spent + the next $0.01 would pass it


def model(request):
    time.sleep(0.15)  # long enough that both workers have requests under way
    answer = grounded_model(request)
    answer.body["usage"] = {"prompt_tokens": 0, "completion_tokens": 1000, "total_tokens": 1000}
    return answer


def test_run_budget_is_shared_by_all_distill_tasks(kb, tmp_path, workers):
    with OpenAIServer(model) as server:
        local = llm_workspace(tmp_path / "local", server.base_url, llm=PRICES, distill={"max_cost_usd": BUDGET})
        res = kb("-w", local, "run", "--only", "distill")
        assert len(server.requests) == ALLOWED, res.stderr  # a local run: one client, the same budget
        server.requests.clear()

        ws = llm_workspace(tmp_path / "celery", server.base_url, llm=PRICES, distill={"max_cost_usd": BUDGET},
                           workers={"prefetch": 1})  # fmt: skip
        a = workers.start(ws, "--queues", "llm,index", "-c", "1")
        b = workers.start(ws, "--queues", "llm", "-c", "1")
        workers.wait_ready(2)
        res = kb("-w", ws, "run", "--via", "celery", "--only", "distill", "--broker", workers.broker)
        received = len(server.requests)

    assert received == ALLOWED, res.stderr + workers.logs()  # across both workers, not per task
    assert res.exit_code == 1
    assert "Stopped before exceeding the run's budget" in res.stderr and "for the whole run" in res.stderr
    run_id = res.stdout.split("run id: ", 1)[1].split()[0]
    assert f"kb jobs retry {run_id}" in res.stderr
    st = records.status(Workspace.at(ws, discover=False), run_id)
    tasks = [st.tasks[("distill", i)] for i in INTERVIEWS]
    assert {t["ppid"] for t in tasks} == {a.pid, b.pid}  # one interview on each worker
    assert any(t["state"] == "failed" and "run's budget" in t["why"] for t in tasks), tasks
    ledger = cost_report(Workspace.at(ws, discover=False).run_log, run_id=run_id)
    assert ledger.totals["requests"] == ALLOWED and ledger.totals["cost_usd"] <= BUDGET
