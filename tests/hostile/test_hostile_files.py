"""The hostile-file corpus (tests/hostile/files/ + generated big inputs), through the real CLI.

All cases run in two worker subprocesses capped at 1 GB of data (``RLIMIT_DATA``; the test
process itself is not capped), see worker.py. Each case must give its exit code and message,
no traceback, nothing opened in the folder beside the workspace holding ``secret.md``, nothing
written outside the workspace, the secret nowhere in the workspace, and nothing left in the
system temp folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from cases import CASES  # noqa: E402

WORKERS = 2


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("hostile")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
    names = [c.name for c in CASES]
    procs = []
    for w in range(WORKERS):
        (root / f"w{w}").mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "worker.py"), str(root / f"w{w}"), *names[w::WORKERS]],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )  # fmt: skip
        )
    out: dict[str, dict] = {}
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        for line in stdout.splitlines():
            r = json.loads(line)
            out[r["name"]] = r
    return out


def test_corpus_size() -> None:
    files = [p for p in (HERE / "files").iterdir() if p.is_file()]
    assert len(files) >= 40 and len(CASES) >= 40
    used = {c.source for c in CASES}
    assert {p.name for p in files} <= used, "every corpus file is used by a case"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_file(case, results) -> None:
    r = results[case.name]
    *first, last = r["runs"]
    for run in r["runs"]:
        assert run["traceback"] is None, run["traceback"]
        assert "Traceback" not in run["output"], run["output"]
    for run in first:
        assert run["code"] == 0, run["output"]
    assert last["code"] == case.code, last["output"]
    assert re.search(case.message, last["output"], re.S), last["output"]
    assert r["outside_reads"] == [], "read the folder beside the workspace"
    assert r["outside_writes"] == [], "wrote outside the workspace"
    assert r["secret_in_workspace"] == [] and not r["outside_changed"]
    assert r["system_temp_left"] == [], "left files in the system temp folder"
    assert r["max_rss_mb"] < 1024
    if case.name == "add-reference-outside-then-transcribe":  # the real-size transcript: every word of 5,000 cues kept
        from tests.hostile.worker import _real_turns

        turns = _real_turns()
        expected = sum(len(turns[i % len(turns)][1].split()) for i in range(5000))
        assert r["transcript_words"]["ref"] == expected, (r["transcript_words"], expected)
