"""End-to-end latency of the chat endpoint over loopback, and a load run. Printed, never asserted.

1. Reference, in this process: the query embedding alone and ``Bundle.search`` alone (p50/p99).
2. ``POST /v1/search`` one request at a time against ``kb serve`` (a subprocess): p50/p99, and
   the ratio to the in-process search (what HTTP + JSON + FastAPI add).
3. Load: N concurrent clients (default 50) for --duration seconds (default 60) mixing
   ``/v1/search`` and ``/v1/ask``: requests, errors (must be 0), throughput, p50/p99.
4. With ``--reload-every S``: the same load again while a new bundle is swapped in every S
   seconds through the real reload paths, in turn: a new ``kb-*.duckdb`` renamed into the
   served folder (``kb serve --watch`` picks the newest, as after ``kb export``) and
   ``POST /admin/reload``. Reports the reloads the server counted (``kb_bundle_reloads_total``),
   errors (must be 0) and the p99 as a ratio to the run without reloads (same server, same load).

The bundle is exported from the service test workspace (tests/data/service/workspace) unless
--bundle is given. Loopback only; every loop is bounded by a count or the duration.

    .venv/bin/python bench/service_bench.py [--duration 60] [--clients 50] [--bundle PATH] [--reload-every S]
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
import threading
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


def start_server(bundle: Path, port: int, *, watch: bool = False) -> subprocess.Popen:
    """``kb serve`` on ``bundle`` (a file, or a folder: its newest bundle); ``watch``: reload when it changes."""
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
            *(["--watch"] if watch else []),
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


async def load_run(
    url: str, qs: list[str], clients: int, duration: float, *, failures: list[str] | None = None
) -> tuple[list[float], int, int, dict]:
    """``clients`` concurrent loops for ``duration`` s; ``failures`` (if given) collects what each error was."""
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
                    what = f"{path} {r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok = False
                    what = f"{path} {type(exc).__name__}: {exc}"
                if not ok and failures is not None:
                    failures.append(what)
                latencies.append(time.perf_counter() - t0)
                kinds[path] = kinds.get(path, 0) + 1
                errors += not ok
                i += clients

        await asyncio.gather(*(worker(n) for n in range(clients)))
    return latencies, errors, len(latencies), kinds


class Reloader(threading.Thread):
    """Every ``every`` s a reload through a real path, in turn: a new bundle file renamed into the
    served folder (the ``--watch`` poller follows it, as after ``kb export``) or ``POST /admin/reload``."""

    def __init__(self, url: str, source: Path, folder: Path, every: float) -> None:
        super().__init__(name="bench-reloader", daemon=True)
        self.url, self.source, self.folder, self.every = url, source, folder, every
        self.swaps = self.posts = 0
        self.refused: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        import httpx

        n = 0
        while not self._halt.wait(self.every):
            n += 1
            if n % 2:  # a new export: written beside, renamed in (a new mtime: the folder's newest)
                tmp = self.folder / f".kb-tmp-{os.getpid()}-bench-{n}.duckdb"
                shutil.copyfile(self.source, tmp)
                os.replace(tmp, self.folder / f"kb-bench-{n:04d}.duckdb")
                self.swaps += 1
                continue
            try:
                r = httpx.post(f"{self.url}/admin/reload", timeout=60)
                if r.status_code != 200:
                    self.refused.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                self.refused.append(f"{type(exc).__name__}: {exc}")
            self.posts += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)


def reload_counts(url: str) -> dict[str, float]:
    """``kb_bundle_reloads_total`` by result, as the server counted them."""
    import httpx

    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("kb_bundle_reloads_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            counts[result] = counts.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def in_process(bundle_path: Path, requests: int) -> tuple[list[str], list[float], list[float]]:
    """Questions, and the query embedding / Bundle.search latencies in this process (the reference)."""
    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import Bundle

    bundle = Bundle.load(bundle_path, embedder_for_manifest)
    qs = questions(bundle)
    print(f"bundle {bundle_path.name}: {bundle.manifest.counts}; {len(qs)} distinct questions")
    embedder = bundle.embedder
    for q in qs[:5]:  # warm up
        embedder.encode([q])
        bundle.search(q, k=5)
    enc, core = [], []
    for i in range(requests):
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
    return qs, enc, core


def sequential(url: str, qs: list[str], requests: int, core: list[float]) -> list[float]:
    import httpx

    seq: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for q in qs[:5]:
            c.post("/v1/search", json={"query": q, "k": 5})
        for i in range(requests):
            t0 = time.perf_counter()
            r = c.post("/v1/search", json={"query": qs[i % len(qs)], "k": 5})
            seq.append(time.perf_counter() - t0)
            r.raise_for_status()
    print(f"POST /v1/search over loopback         {ms(seq)}")
    print(
        f"  ratio HTTP end-to-end / in-process search: p50 {pct(seq, 50) / pct(core, 50):.2f}x"
        f"   p99 {pct(seq, 99) / pct(core, 99):.2f}x"
    )
    return seq


def loaded(url: str, qs: list[str], args: argparse.Namespace, label: str) -> tuple[list[float], int]:
    failures: list[str] = []
    t0 = time.monotonic()
    lat, errors, n, kinds = asyncio.run(load_run(url, qs, args.clients, args.duration, failures=failures))
    wall = time.monotonic() - t0
    print(
        f"load{label}: {args.clients} clients x {args.duration:.0f} s: {n} requests ({kinds}), errors {errors}, "
        f"{n / wall:.1f} req/s, machine load {load_text()}"
    )
    print(f"  latency under load                  {ms(lat)}")
    for what in sorted(set(failures))[:10]:
        print(f"  ERROR: {what}")
    return lat, errors


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, help="a bundle to serve (default: export the test workspace)")
    ap.add_argument("--duration", type=float, default=60.0, help="load run seconds (default 60)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--requests", type=int, default=200, help="sequential requests for the latency part")
    ap.add_argument("--reload-every", type=float, default=0, help="also load while reloading every S s (0 = off)")
    args = ap.parse_args()
    print(f"machine load at start: {load_text()}")
    with tempfile.TemporaryDirectory(prefix="kb-service-bench-") as tmp_name:
        tmp = Path(tmp_name)
        bundle_path = args.bundle.resolve() if args.bundle else export(tmp)
        qs, enc, core = in_process(bundle_path, args.requests)
        served = tmp / "served"  # a folder: kb serve --watch follows its newest bundle
        served.mkdir()
        shutil.copyfile(bundle_path, served / "kb-bench-0000.duckdb")
        port = free_port()
        proc = start_server(served, port, watch=bool(args.reload_every))
        errors_total = 0
        try:
            url = f"http://127.0.0.1:{port}"
            seq = sequential(url, qs, args.requests, core)
            lat, errors = loaded(url, qs, args, "")
            errors_total += errors
            ceiling = 1 / statistics.fmean(enc)
            print(
                f"  throughput / one-thread encoder ceiling ({ceiling:.0f} queries/s): {len(lat) / args.duration / ceiling:.2f}"
            )
            print(
                f"  mean {statistics.fmean(lat) * 1000:.1f} ms; p99 under load / sequential p99: {pct(lat, 99) / pct(seq, 99):.1f}x"
            )
            if args.reload_every:
                errors_total += with_reloads(url, qs, args, bundle_path, served, lat)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if errors_total:
        print(f"ERRORS: {errors_total} (must be 0)")
        sys.exit(1)


def with_reloads(
    url: str, qs: list[str], args: argparse.Namespace, source: Path, served: Path, base: list[float]
) -> int:
    """The same load while bundles are swapped in; errors (requests and refused reloads)."""
    before = reload_counts(url)
    reloader = Reloader(url, source, served, args.reload_every)
    reloader.start()
    lat, errors = loaded(url, qs, args, f" with a reload every {args.reload_every:g} s")
    reloader.stop()
    time.sleep(3)  # the watcher's last poll
    after = reload_counts(url)
    done = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    print(
        f"  reloads: {reloader.swaps} new bundle files (--watch) + {reloader.posts} POST /admin/reload; "
        f"the server counted {done}; refused {len(reloader.refused)}"
    )
    for what in reloader.refused[:5]:
        print(f"  REFUSED: {what}")
    print(
        f"  with reloads / without: p50 {pct(lat, 50) / pct(base, 50):.2f}x   p99 {pct(lat, 99) / pct(base, 99):.2f}x"
        f"   throughput {len(lat) / len(base):.2f}x"
    )
    return errors + len(reloader.refused) + int(done.get("refused", 0))


if __name__ == "__main__":
    main()
