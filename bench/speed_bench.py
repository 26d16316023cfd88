"""kb against the vector store a user would pick instead, side by side in one run. Printed, never asserted.

Real data (``bench/realdata.py``): the Podman + Argo CD passages, all-MiniLM-L6-v2 vectors
embedded once and cached, grown to each size by small perturbations; queries are the eval set's
questions and atom titles. Parts (``--parts``, default all):

- ``chroma``: ``POST /v1/search`` on ``kb serve`` over loopback (query text -> top-10, one at a
  time) vs chromadb in-process (its own venv, ``--chroma-python``) with the same model through
  its ONNX embedding function, at 10k and 100k passages; recall@10 of each against its own exact
  answer (kb: the exact-scan bundle; chromadb: the exact top-10 passages);
- ``core``: the search core on the HNSW option vs faiss HNSW called directly (same vectors,
  same parameters), p50 and recall@10 vs exact;
- ``load``: 50 clients x 60 s mixing search and ask, every query unique, the old path (torch
  encoder, one query at a time, no cache, exact) and the new defaults, one after the other;
- ``bundle``: ``kb serve`` start-up time and RSS at 100k and 1M passages.

    .venv/bin/python bench/speed_bench.py [--parts chroma core load bundle] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import realdata  # noqa: E402

OLD_PATH = {"encoder": "sentence-transformers", "query_cache": 0, "batch_window_ms": 0, "dense": "exact"}


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, p)) if values else float("nan")


def bundle_of(real, n: int) -> Path:
    """The grown bundle of ``n`` passages (cached beside the real data)."""
    from pipeline.index.bundle import manifest_for, read_manifest, write_bundle

    path = realdata.CACHE / f"kb-{n}.duckdb"
    if path.is_file():
        return path
    t = time.perf_counter()
    content = realdata.grow_content(real, n)
    manifest = manifest_for(content, read_manifest(real.bundle).embedding, kb_version="bench", statuses=["draft"])
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    write_bundle(tmp, content, manifest)
    tmp.rename(path)
    print(f"  (built the {n:,}-passage bundle in {time.perf_counter() - t:.0f} s)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``kb serve`` in a subprocess on 127.0.0.1 with ``serve:`` settings from a temp kb.yaml."""

    def __init__(self, bundle: Path, serve: dict | None = None, root: Path | None = None) -> None:
        self.bundle, self.serve = bundle, serve or {}
        self.root = root or HERE.parent  # the kb checkout that serves (--reference-tree: an older one)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        import httpx

        self._tmp = tempfile.TemporaryDirectory(prefix="kb-speed-")
        ws = Path(self._tmp.name)
        lines = ["threads: 1", "serve:"] + [f"  {k}: {v}" for k, v in self.serve.items()]
        (ws / "kb.yaml").write_text("\n".join(lines if self.serve else lines[:1]) + "\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
        env["PYTHONPATH"] = str(self.root)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline",
                "serve",
                "--bundle",
                str(self.bundle),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ws,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"kb serve exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.startup = time.perf_counter() - t0
        self.rss_mb = _rss_mb(self.proc.pid)
        return self

    def health(self) -> dict:
        import httpx

        return httpx.get(f"{self.url}/healthz", timeout=120).json()

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._tmp.cleanup()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def kb_http(url: str, queries: list[str], k: int = 10) -> tuple[list[float], list[list[str]]]:
    import httpx

    times, ids = [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        for q in queries[:5]:
            c.post("/v1/search", json={"query": q + " warm", "k": k})
        for q in queries:
            t = time.perf_counter()
            r = c.post("/v1/search", json={"query": q, "k": k})
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            ids.append([h["atom_id"] for h in r.json()["results"]])
    return times, ids


def overlap(found: list[list], truth: list[list]) -> float:
    return float(np.mean([len(set(f) & set(t)) / max(1, len(t)) for f, t in zip(found, truth, strict=True)]))


def part_chroma(real, sizes: list[int], chroma_python: str, sides: tuple | list = ()) -> None:
    from pipeline.backends.embed import resolve_model
    from pipeline.backends.embed.fast import write_onnx_model
    from pipeline.index.bundle import Bundle

    model_dir = realdata.CACHE / "onnx-model"
    if not (model_dir / "kb-model.json").is_file():
        ref = resolve_model("all-MiniLM-L6-v2")
        write_onnx_model(Path(ref.location), ref.model_id, model_dir)
    queries = real.queries
    qv = realdata.query_vectors(real)
    print("\n== kb /v1/search over HTTP vs chromadb in-process (query text -> top-10, one at a time) ==")
    for n in sizes:
        path = bundle_of(real, n)
        exact_bundle = Bundle.load(path, _Fixed(queries, qv))
        kb_truth = [[h.atom_id for h in exact_bundle.search(q, k=10)] for q in queries]
        vectors = exact_bundle.core.vectors
        truth = [list(np.argsort(-(vectors @ v))[:10]) for v in qv]
        data = realdata.CACHE / f"chroma-{n}"
        data.mkdir(exist_ok=True)
        np.save(data / "vectors.npy", vectors)
        (data / "docs.json").write_text(json.dumps([p["text"] for p in exact_bundle.passages()]))
        (data / "queries.json").write_text(json.dumps(queries))
        del exact_bundle
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "KB_CHROMA_HOME": str(realdata.CACHE / "chroma-home")}
        out = subprocess.run(
            [chroma_python, str(HERE / "chroma_side.py"), "--data", str(data), "--model-dir", str(model_dir)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if out.returncode:
            print(f"  chromadb failed: {out.stderr[-1500:]}")
            continue
        (data / "chroma-result.json").write_text(out.stdout)  # kept: a later failure loses nothing
        ch = json.loads(out.stdout)
        ref = pct(ch["times"], 50)
        print(f"\n{n:,} passages, {len(queries)} real queries, 1 thread")
        print(
            f"{'':48} {'p50 ms':>8} {'p99 ms':>8} {'x chroma p50':>13} {'recall@10':>10} {'build/start s':>14} {'RSS MB':>7}"
        )
        rows = [
            (f"chromadb {ch['version']} (HNSW defaults)", ch["times"], overlap(ch["ids"], truth), ch["build_s"], 0.0)
        ]
        _print_rows(rows, ref)
        for label, serve in sides or KB_SIDES:
            try:
                with Served(path, serve) as srv:
                    times, ids = kb_http(srv.url, queries)
                    dense = srv.health()["bundle"].get("dense", "?")
                    row = (f"{label} [{dense}]", times, overlap(ids, kb_truth), srv.startup, srv.rss_mb)
            except SystemExit as exc:  # e.g. an HNSW index refused by its recall check: say so, go on
                print(f"{label:48} not served: {str(exc).splitlines()[0][-160:]}")
                continue
            _print_rows([row], ref)


KB_SIDES = (
    ("kb serve (defaults)", {}),
    ("kb serve (serve.dense: hnsw)", {"dense": "hnsw"}),
    ("kb serve (serve.dense: hnsw, ef_search 128)", {"dense": "hnsw", "hnsw_ef_search": 128}),
)


def _print_rows(rows: list[tuple], ref: float) -> None:
    for label, times, rec, build, rss in rows:
        print(
            f"{label:48} {pct(times, 50):8.2f} {pct(times, 99):8.2f} {pct(times, 50) / ref:13.2f} {rec:10.3f} "
            f"{build:14.1f} {rss or float('nan'):7.0f}",
            flush=True,
        )


class _Fixed:
    """An embedder that knows the bench queries' vectors (no model load for the exact reference)."""

    model_id, dim, max_tokens = "all-MiniLM-L6-v2", 384, 256

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self._v = dict(zip(texts, vectors, strict=True))

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._v[t] for t in texts])


def part_core(real, sizes: list[int], queries: int) -> None:
    import faiss

    from pipeline.index.ann import AnnParams, ExactDense, FaissDense
    from pipeline.index.search import SearchCore

    faiss.omp_set_num_threads(1)
    qv = realdata.query_vectors(real)
    qv = np.concatenate([qv] * (1 + queries // len(qv)))[:queries]
    print("\n== search core (serve.dense: hnsw) vs faiss HNSW called directly (M=32, efSearch=64, 1 thread) ==")
    for n in sizes:
        vectors = realdata.grow_vectors(real.vectors, n)
        params = AnnParams()
        t = time.perf_counter()
        ann = FaissDense(vectors, params)
        build = time.perf_counter() - t
        atom_of = np.arange(n) // 4
        core = SearchCore(vectors, atom_of, int(atom_of[-1]) + 1, dense_index=ann)
        raw = ann.index
        exact = ExactDense(vectors)
        sp = faiss.SearchParametersHNSW(efSearch=params.ef_search)
        runs = {
            "faiss HNSW direct (reference)": lambda q, raw=raw, sp=sp: raw.search(q[None, :], 10, params=sp),
            "kb SearchCore, serve.dense: hnsw": lambda q, core=core: core.search(q, "", k=10),
            "kb SearchCore, exact scan": lambda q, c=SearchCore(vectors, atom_of, int(atom_of[-1]) + 1): c.search(
                q, "", k=10
            ),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        for i, q in enumerate(qv):
            for j in range(len(runs)):
                name = list(runs)[(i + j) % len(runs)]
                t = time.perf_counter()
                runs[name](q)
                times[name].append(time.perf_counter() - t)
        truth = [exact.top(q, 10)[0] for q in qv]
        rec_raw = overlap([raw.search(q[None, :], 10, params=sp)[1][0] for q in qv], truth)
        rec_kb = overlap([ann.top(q, 50)[0][:10] for q in qv], truth)
        ref = pct(times["faiss HNSW direct (reference)"], 50)
        print(f"\n{n:,} real-derived vectors; HNSW build {build:.1f} s")
        print(f"{'':36} {'p50 ms':>8} {'p99 ms':>8} {'x faiss':>8} {'recall@10':>10}")
        for name, ts in times.items():
            rec = rec_raw if "direct" in name else rec_kb if "hnsw" in name else 1.0
            print(f"{name:36} {pct(ts, 50):8.3f} {pct(ts, 99):8.3f} {pct(ts, 50) / ref:8.2f} {rec:10.3f}")


def part_load(real, n: int, clients: int, duration: float) -> None:
    from service_bench import load_run

    path = bundle_of(real, n)
    qs = realdata.unique_queries(real, 200_000)
    print(
        f"\n== load: {clients} clients x {duration:.0f} s, 3/4 search + 1/4 ask, every query unique, {n:,} passages =="
    )
    rows = []
    offset = 0
    for label, serve in (("old path (torch encoder, 1 at a time, exact)", OLD_PATH), ("new defaults", {})):
        with Served(path, serve) as srv:
            t0 = time.monotonic()
            lat, errors, count, kinds = asyncio.run(load_run(srv.url, qs[offset:], clients, duration))
            wall = time.monotonic() - t0
            enc = srv.health().get("encoder", {})
        offset += count + clients
        rows.append((label, count / wall, errors, lat, enc))
    ref = rows[0]
    print(
        f"{'':46} {'req/s':>7} {'x old':>6} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99 x old':>10} {'cache hits':>11}"
    )
    for label, rps, errors, lat, enc in rows:
        hits = enc.get("cache_hit_rate")
        print(
            f"{label:46} {rps:7.1f} {rps / ref[1]:6.2f} {errors:7d} {pct(lat, 50):8.1f} {pct(lat, 99):8.1f} "
            f"{pct(lat, 99) / pct(ref[3], 99):10.2f} {'-' if hits is None else f'{hits:.1%}':>11}"
        )
        if enc:
            print(f"{'':46} encoder: {enc}")


def part_bundle(real, sizes: list[int], modes: list[str], reference: Path | None) -> None:
    """Start-up to a 200 on /healthz and RSS; with ``reference`` (an older kb checkout) that kb first."""
    print("\n== bundle load: kb serve start-up (to a 200 on /healthz) and RSS ==")
    print(f"{'':44} {'start s':>8} {'x ref':>6} {'RSS MB':>8} {'x ref':>6} {'vectors MB':>11}")
    labels = {"exact": "exact", "hnsw": "hnsw (index beside the bundle)"}
    for n in sizes:
        path = bundle_of(real, n)
        for mode in modes:
            ref = None
            for tree, name in ((reference, "reference"), (None, "this kb")):
                if tree is None and name == "reference":
                    continue
                with Served(path, {"dense": mode}, root=tree) as srv:
                    start, rss = srv.startup, srv.rss_mb
                ref = ref or (start, rss)
                print(
                    f"{n:>9,} {labels[mode] + ', ' + name:34} {start:8.1f} {start / ref[0]:6.2f} {rss:8.0f} "
                    f"{rss / ref[1]:6.2f} {n * 384 * 4 / 2**20:11.0f}",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["chroma", "core", "load", "bundle"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--bundle-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--bundle-modes", nargs="+", default=["exact", "hnsw"], choices=["exact", "hnsw"])
    ap.add_argument("--reference-tree", type=Path, help="an older kb checkout: its start-up is the bundle reference")
    ap.add_argument("--load-size", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--kb-sides", type=int, nargs="+", default=[0, 1, 2], help="rows of KB_SIDES to serve")
    ap.add_argument("--chroma-python", default=str(HERE.parent / "build" / "chromavenv" / "bin" / "python"))
    args = ap.parse_args()
    real = realdata.real_passages()
    print(
        f"real data: {len(real.passages)} passages, {len(real.queries)} queries; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    if "core" in args.parts:
        part_core(real, args.sizes, args.queries)
    if "chroma" in args.parts:
        part_chroma(real, args.sizes, args.chroma_python, [KB_SIDES[i] for i in args.kb_sides])
    if "load" in args.parts:
        part_load(real, args.load_size, args.clients, args.duration)
    if "bundle" in args.parts:
        part_bundle(real, args.bundle_sizes, args.bundle_modes, args.reference_tree)


if __name__ == "__main__":
    main()
