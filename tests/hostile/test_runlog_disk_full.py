"""A full disk (``ulimit -f`` in a forked child: no root, no tmpfs) under the run log ``.kb/runs.duckdb``.

- the log cannot be created: ``kb distill --backend llm`` fails at once with Error/Hint naming
  the file and the fix, before any request is paid for, and leaves no half-made log; the rerun
  with space works and its log reads;
- the log stops growing mid-run: the rows are kept, the run fails at its end with the hint (the
  answers are in the window cache), and the log file on disk still reads.
"""

from __future__ import annotations

import os

import pytest

from pipeline.config import Settings
from pipeline.errors import DiskFullError, KbError
from pipeline.index.runlog import RunLog
from pipeline.index.runlog import report as cost_report
from pipeline.reporting import Reporter
from pipeline.stages import distill
from pipeline.workspace import Workspace
from tests.fakes.distill_model import excerpt, item, make_workspace
from tests.fakes.openai_server import OpenAIServer, tool_call
from tests.hostile.crash import in_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork() for the ulimit -f child")


def answer() -> dict:
    from tests.stages.distill.test_distill import expert_turns

    return tool_call("Extraction", {"items": [item(expert_turns()[0], title="Litestream replicates SQLite to S3")]})


def test_a_run_log_that_cannot_be_created_fails_before_any_request(tmp_path):
    ws = Workspace.at(make_workspace(tmp_path / "ws", {"ship-it-59": excerpt()}))
    log = ws.state_dir / distill.RUNLOG
    with OpenAIServer() as server:
        settings = Settings.load(ws.root, **{"llm.base_url": server.base_url, "llm.timeout_s": 3.0})
        server.push(answer())
        got = in_child(tmp_path / "r.json", 4096, lambda: distill.run(settings, ws, Reporter(), backend="llm"))
        assert got["code"] == 1 and got["type"] == "DiskFullError", got
        assert (
            got["message"].startswith("could not write the run log: could not write ")
            and "runs.duckdb" in (got["message"])
        )
        assert "ulimit -f" in got["message"] and "nothing was sent to the LLM" in got["hint"]
        assert server.requests == []  # nothing paid for
        assert not log.exists() and not log.with_name(log.name + ".wal").exists()
        assert list(ws.atom_files()) == []
        rep = distill.run(settings, ws, Reporter(), backend="llm")  # space again: the rerun just works
    assert rep.created == 1
    assert cost_report(log).totals["requests"] == 1


def test_a_run_log_that_stops_growing_mid_run_fails_at_the_end_with_the_hint(tmp_path):
    path = tmp_path / ".kb" / "runs.duckdb"
    first = RunLog(path, backend="llm", model="m", prompt="p")
    first.request("i", 0, 10, 5, 0.01)
    first.finish("ok")
    first.close()
    limit = 32 * 1024  # the WAL may not grow past this (the log file itself is already larger)

    def run() -> None:
        log = RunLog(path, backend="llm", model="m", prompt="p")
        try:
            for w in range(5000):  # the WAL outgrows the limit somewhere here
                log.request("i", w, 1000, 500, 0.5)
                if log.error is not None:
                    break
            assert log.error is not None, "the limit was never reached"
            log.finish("ok")
        finally:
            log.close()

    got = in_child(tmp_path / "r.json", limit, run)
    assert got["code"] == 1 and got["type"] == "DiskFullError", got
    assert "could not write the run log" in got["message"] and "window cache" in got["hint"]
    runs = cost_report(path).runs  # the file on disk still reads: the first run is intact
    assert any(r["status"] == "ok" and r["requests"] == 1 for r in runs)


def test_disk_full_error_type_is_a_kb_error():
    assert issubclass(DiskFullError, KbError)
