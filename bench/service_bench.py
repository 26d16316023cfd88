"""End-to-end latency of the chat endpoint over loopback, and a load run. Printed, never asserted.

1. Reference, in this process: the query embedding alone and ``Bundle.search`` alone (p50/p99).
2. ``POST /v1/search`` one request at a time against ``kb serve`` (a subprocess): p50/p99, and
   the ratio to the in-process search (what HTTP + JSON + FastAPI add).
3. Load: N concurrent clients (default 50) for --duration seconds (default 60) mixing
   ``/v1/search`` and ``/v1/ask``: requests, errors (must be 0), throughput, p50/p99.

The bundle is exported from the service test workspace (tests/data/service/workspace) unless
--bundle is given. Loopback only; every loop is bounded by a count or the duration.

    .venv/bin/python bench/service_bench.py [--duration 60] [--clients 50] [--bundle PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKSPACE = ROOT / "tests" / "data" / "service" / "workspace"
OFF_TOPIC = ROOT / "tests" / "data" / "service" / "offtopic.txt"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:7.2f} ms   p99 {pct(values, 99) * 1000:7.2f} ms   (n={len(values)})"


def export(tmp: Path) -> Path:
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export as export_stage
    from pipeline.workspace import Workspace

    ws = tmp / "ws"
    shutil.copytree(WORKSPACE, ws)
    out = tmp / "kb-bench.duckdb"
    export_stage.run(Settings.load(ws), Workspace.at(ws, discover=False), Reporter(), out=out)
    return out


def questions(bundle) -> list[str]:
    qs: list[str] = []
    for hit in bundle.search("podman argo cd", k=50):
        for pair in bundle.faq_pairs(hit.atom_id):
            q = pair["question"] if isinstance(pair, dict) else pair.question
            qs.append(q)
    qs += [line.strip() for line in OFF_TOPIC.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return qs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ)
    for var in [v for v in env if v.startswith("KB_")]:
        env.pop(var)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "serve",
            "--bundle",
            str(bundle),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=str(bundle.parent),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kb serve exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("kb serve did not come up within 120 s")


async def load_run(url: str, qs: list[str], clients: int, duration: float) -> tuple[list[float], int, int, dict]:
    import httpx

    latencies: list[float] = []
    errors = 0
    kinds: dict[str, int] = {}
    end = time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker(n: int) -> None:
            nonlocal errors
            i = n
            while time.monotonic() < end:
                q = qs[i % len(qs)]
                path, body = ("/v1/ask", {"question": q}) if i % 4 == 0 else ("/v1/search", {"query": q, "k": 5})
                t0 = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                kinds[path] = kinds.get(path, 0) + 1
                errors += not ok
                i += clients

        await asyncio.gather(*(worker(n) for n in range(clients)))
    return latencies, errors, len(latencies), kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, help="a bundle to serve (default: export the test workspace)")
    ap.add_argument("--duration", type=float, default=60.0, help="load run seconds (default 60)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--requests", type=int, default=200, help="sequential requests for the latency part")
    args = ap.parse_args()

    import httpx

    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import Bundle

    with tempfile.TemporaryDirectory(prefix="kb-service-bench-") as tmp_name:
        tmp = Path(tmp_name)
        bundle_path = args.bundle.resolve() if args.bundle else export(tmp)
        bundle = Bundle.load(bundle_path, embedder_for_manifest)
        qs = questions(bundle)
        print(f"bundle {bundle_path.name}: {bundle.manifest.counts}; {len(qs)} distinct questions")

        # 1. in-process references
        embedder = bundle.embedder
        for q in qs[:5]:  # warm up
            embedder.encode([q])
            bundle.search(q, k=5)
        enc, core = [], []
        for i in range(args.requests):
            q = qs[i % len(qs)]
            t0 = time.perf_counter()
            embedder.encode([q])
            enc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bundle.search(q, k=5)
            core.append(time.perf_counter() - t0)
        bundle.close()
        print(f"query embedding alone (in process)   {ms(enc)}")
        print(f"Bundle.search incl. embedding         {ms(core)}")

        # 2. sequential over HTTP
        port = free_port()
        proc = start_server(bundle_path, port)
        try:
            url = f"http://127.0.0.1:{port}"
            seq: list[float] = []
            with httpx.Client(base_url=url, timeout=30) as c:
                for q in qs[:5]:
                    c.post("/v1/search", json={"query": q, "k": 5})
                for i in range(args.requests):
                    t0 = time.perf_counter()
                    r = c.post("/v1/search", json={"query": qs[i % len(qs)], "k": 5})
                    seq.append(time.perf_counter() - t0)
                    r.raise_for_status()
            print(f"POST /v1/search over loopback         {ms(seq)}")
            print(
                f"  ratio HTTP end-to-end / in-process search: p50 {pct(seq, 50) / pct(core, 50):.2f}x"
                f"   p99 {pct(seq, 99) / pct(core, 99):.2f}x"
            )

            # 3. load
            t0 = time.monotonic()
            lat, errors, n, kinds = asyncio.run(load_run(url, qs, args.clients, args.duration))
            wall = time.monotonic() - t0
            print(
                f"load: {args.clients} clients x {args.duration:.0f} s: {n} requests ({kinds}), errors {errors}, "
                f"{n / wall:.1f} req/s"
            )
            ceiling = 1 / statistics.fmean(enc)
            print(f"  throughput / one-thread encoder ceiling ({ceiling:.0f} queries/s): {n / wall / ceiling:.2f}")
            print(f"  latency under load                  {ms(lat)}")
            print(
                f"  mean {statistics.fmean(lat) * 1000:.1f} ms; p99 under load / sequential p99: {pct(lat, 99) / pct(seq, 99):.1f}x"
            )
            if errors:
                print(f"  ERRORS: {errors} (must be 0)")
                sys.exit(1)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
