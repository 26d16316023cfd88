"""Triage scan rate on a generated log (default 100 MB): lines/s vs ``grep -c`` on the same file,
and the scan's peak memory (ru_maxrss of a subprocess), streamed.

Usage: python bench/bench_triage_scan.py [SIZE_MB]    (prints ratios; never asserts timings)
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = [
    'time="{t}" level=info msg="Refreshing app status (normal refresh requested), level ({n})" application=argocd/app-{a}',
    'time="{t}" level=info msg="Reconciliation completed" application=argocd/app-{a} duration={n}ms',
    'time="{t}" level=error msg="Manifest generation error (cached): rpc error: code = Unknown desc = repo {h} not found" application=argocd/app-{a}',
    '{{"level":"error","msg":"config referenced \'$slack-{a}:token\', but key does not exist in secret","time":"{t}"}}',
    '{t} ERROR command required for rootless mode with multiple IDs: exec: "newuidmap": executable file not found in $PATH',
    '{t} WARN step "test-{a}" exited with status {n}, retrying',
    '{t} ERROR error mounting build container "{h}": creating overlay mount to /var/lib/containers/storage/overlay/{h}/merged: exit status 1',
    "{t} INFO request GET /api/v1/applications/app-{a} took {n}ms from 10.{n}.{a}.7",
]


def generate(path: Path, size_mb: int, seed: int = 7, errors: float = 0.1) -> int:
    """Write about ``size_mb`` MB of mixed lines; returns the line count."""
    rnd = random.Random(seed)
    target = size_mb << 20
    written = lines = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < target:
            buf = []
            for _ in range(2000):
                i = rnd.randrange(len(TEMPLATES)) if rnd.random() < errors * 3 else rnd.choice((0, 1, 7))
                line = TEMPLATES[i].format(
                    t=f"2026-11-30T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}Z",
                    n=rnd.randrange(1000), a=rnd.randrange(400), h=f"{rnd.getrandbits(64):016x}",
                )  # fmt: skip
                buf.append(line)
            chunk = "\n".join(buf) + "\n"
            fh.write(chunk)
            written += len(chunk)
            lines += len(buf)
    return lines


SCAN = """
import json, resource, sys, time
from pathlib import Path
from pipeline.ops import Catalog
from pipeline.ops.triage import Scanner
t0 = time.perf_counter()
s = Scanner()
s.scan_file(Path(sys.argv[1]), "big.log")
r = s.result(Catalog([]))
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "lines": s.lines, "groups": len(r.groups),
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def scan(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", SCAN, str(path)], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
    return json.loads(out.stdout)


def main(argv: list[str]) -> int:
    size = int(argv[1]) if len(argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.log"
        lines = generate(path, size)
        t0 = time.perf_counter()
        grep = subprocess.run(["grep", "-c", "", str(path)], capture_output=True, text=True, check=True)
        grep_s = time.perf_counter() - t0
        assert int(grep.stdout) == lines
        small = Path(tmp) / "small.log"
        generate(small, 1)
        base = scan(small)
        res = scan(path)
    rate = res["lines"] / res["seconds"]
    print(f"file: {size} MB, {lines} lines; groups: {res['groups']}")
    print(f"kb triage scan: {rate:,.0f} lines/s ({res['seconds']:.1f} s); grep -c: {lines / grep_s:,.0f} lines/s")
    print(f"ratio kb/grep: {rate / (lines / grep_s):.4f}")
    print(f"peak RSS: {res['maxrss_kb'] / 1024:.0f} MB for {size} MB vs {base['maxrss_kb'] / 1024:.0f} MB for 1 MB "
          f"(growth {(res['maxrss_kb'] - base['maxrss_kb']) / 1024:.0f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
