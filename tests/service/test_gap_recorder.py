"""The service's gap recorder never holds a request: a gap log locked by another process (another
``kb serve --workers`` process, or ``kb gaps`` reading) is written by the recorder's own thread once it
is free, and the app's shutdown writes what is queued."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

pytest.importorskip("duckdb")


def test_a_locked_gap_log_does_not_hold_the_answer_and_loses_nothing(tmp_path):
    from pipeline.index.gaps import GapLog
    from pipeline.service.gaps import GapRecorder

    path = tmp_path / "gaps.duckdb"
    log = GapLog(path)
    log.record([{"kind": "question", "text": "an earlier question?"}])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time, duckdb
            con = duckdb.connect({str(path)!r})
            print("held", flush=True)
            sys.stdin.readline()  # until the test lets go
            con.close()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        recorder = GapRecorder(log)
        result = SimpleNamespace(uncertain=True, evidence=0.31, reason="no atom covers it", citations=[])
        recorder.note("How do I rotate the repo-server's TLS key?", result, lambda atom_id: None)
        assert holder.poll() is None  # the note returned while another process still holds the file
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    recorder.close()
    texts = {g.text for g in log.all()}
    assert texts == {"an earlier question?", "How do I rotate the repo-server's TLS key?"}
