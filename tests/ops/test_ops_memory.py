"""A big log is streamed: peak memory (ru_maxrss of a subprocess) does not grow with its size,
and ``kb triage --progress`` shows a progress bar. The 100 MB run and the rate vs ``grep -c``
are in bench/bench_triage_scan.py (timings are never asserted)."""

from __future__ import annotations

import subprocess
import sys

from bench.bench_triage_scan import generate
from tests.paths import REPO_ROOT as ROOT

# ru_maxrss survives fork+exec on Linux (a child starts with its parent's high-water mark), so the
# scan runs as a grandchild of a small launcher and the launcher reports its child's ru_maxrss.
RUN = """
import resource, subprocess, sys
code = subprocess.run([sys.executable, "-m", "pipeline", *sys.argv[1:]]).returncode
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _kb(*args: str) -> tuple[int, str, str, int]:
    p = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "100"})  # fmt: skip
    rss = int(p.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0])
    return p.returncode, p.stdout, p.stderr, rss


def test_big_log_is_scanned_in_bounded_memory_with_a_progress_bar(workspace, tmp_path):
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    generate(small, 1)
    lines = generate(big, 30)
    # both with --progress, so the two runs differ only in the file's size
    code, out_small, _, rss_small = _kb("-w", str(workspace), "triage", str(small), "--format", "json", "--progress")
    assert code == 0
    code, out, err, rss_big = _kb("-w", str(workspace), "triage", str(big), "--format", "json", "--progress")
    assert code == 0, err
    assert f'"lines": {lines}' in out
    assert "scanning: 50%" in err and "scanning: 100%" in err  # the progress (on stderr; a live bar on a terminal)
    # 30x the input (29 MB more), same peak memory give or take noise (6.3 MB once with a 10 MB log, up to 4.6 MB
    # between runs of one file): reading the file whole would add at least its size
    assert rss_big - rss_small < 10 * 1024, (rss_small, rss_big)
    assert rss_big < 200 * 1024
