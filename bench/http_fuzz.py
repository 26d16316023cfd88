"""HTTP fuzz: 10,000 seeded requests from the OpenAPI document against a real ``kb serve``.

The requests come from tests/hostile/http_fuzz.py (schema-shaped bodies, then one mutation each:
wrong types, nulls, deep or wide values, broken or non-UTF-8 JSON, random methods, paths, headers,
content types, missing keys). Printed, never asserted: the count by status, the responses >= 500
(must be 0) and non-JSON 4xx, the server's RSS after the run vs after a 200-request warm-up (the
ratio is the memory figure), the /metrics size, and the throughput.

    nice .venv/bin/python bench/http_fuzz.py [--requests 10000] [--seed 17] [--bundle PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKSPACE = ROOT / "tests" / "data" / "service" / "workspace"


def export(tmp: Path) -> Path:
    import shutil

    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export as export_stage
    from pipeline.workspace import Workspace

    ws = tmp / "ws"
    shutil.copytree(WORKSPACE, ws)
    out = tmp / "dist" / "kb-fuzz.duckdb"
    export_stage.run(Settings.load(ws), Workspace.at(ws, discover=False), Reporter(), out=out)
    return out


def main() -> None:
    from tests.hostile import http_fuzz
    from tests.hostile.kbserve import KbServe, request_bytes, send_raw

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--bundle", type=Path, help="a bundle to serve (default: export the test workspace)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-http-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        bundle = export(tmp) if args.bundle is None else args.bundle.resolve()
        if args.bundle is not None:  # the server's log goes beside the bundle: use a copy in our folder
            import shutil

            bundle = Path(shutil.copy(bundle, tmp / bundle.name))
        with KbServe(bundle, header_timeout_s=5, body_timeout_s=5) as srv:
            doc = send_raw(srv.port, request_bytes("GET", "/openapi.json")).json()
            http_fuzz.run(srv.port, http_fuzz.generate(doc, 200, seed=args.seed + 1))
            rss_warm = srv.rss_kb()
            requests = http_fuzz.generate(doc, args.requests, seed=args.seed)
            start = time.perf_counter()
            counts, bad = http_fuzz.run(srv.port, requests)
            seconds = time.perf_counter() - start
            rss_end = srv.rss_kb()
            metrics = send_raw(srv.port, request_bytes("GET", "/metrics")).body
            alive = srv.alive() and send_raw(srv.port, request_bytes("GET", "/healthz")).status == 200
    five = sum(n for s, n in counts.items() if s >= 500 or s == 0)
    print(f"requests: {sum(counts.values())} in {seconds:.1f} s ({sum(counts.values()) / seconds:.0f}/s)")
    print("by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"responses >= 500 (or no response): {five}; non-JSON 4xx: {len(bad) - five}")
    for head, reply in bad[:10]:
        print("  BAD", head[:120], "->", reply[:160])
    print(
        f"server RSS: {rss_warm / 1024:.0f} MB after warm-up, {rss_end / 1024:.0f} MB after: ratio {rss_end / rss_warm:.3f}"
    )
    print(f"/metrics: {len(metrics)} bytes; server alive after: {alive}")


if __name__ == "__main__":
    main()
