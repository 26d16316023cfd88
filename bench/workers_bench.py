"""Benchmark: interviews/hour through 1 vs 2 Celery workers (``kb worker``) on the shipped sample.

The two sample interviews are copied N times (``--copies``; each copy's words are marked so its
windows are not the first copy's cache hits) and distilled with the LLM backend against the
loopback fake OpenAI server, which answers every request after a fixed latency (``--latency``,
a remote model's think time). Each configuration gets a fresh workspace, a fresh redis-server on
a unix socket, real worker processes; the clock runs from ``submit`` to the run's callback done
(consolidation included, which is serial). Prints the throughputs and their ratio; asserts nothing.

    .venv/bin/python bench/workers_bench.py [--copies 10] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.jobs import app as jobs_app  # noqa: E402
from pipeline.jobs import records  # noqa: E402
from pipeline.models import Transcript  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from tests.fakes.distill_model import grounded_model, make_workspace  # noqa: E402
from tests.fakes.openai_server import OpenAIServer  # noqa: E402


def marked(tr: Transcript, iid: str, k: int) -> Transcript:
    data = tr.model_dump()
    data["interview"] = iid
    for seg in data["segments"]:
        seg["text"] = f"copy{k} {seg['text']}"
        seg["words"] = []  # word times would no longer match the marked text
    return Transcript.model_validate(data)


def workspace(root: Path, copies: int, base_url: str) -> tuple[Path, int]:
    sample = {p.name: Transcript.model_validate_json((p / "transcript.json").read_text(encoding="utf-8"))
              for p in sorted((ROOT / "interviews").iterdir()) if (p / "transcript.json").is_file()}  # fmt: skip
    trs = {f"{i}-c{k}": marked(tr, f"{i}-c{k}", k) for k in range(copies) for i, tr in sample.items()}
    make_workspace(root, trs)
    (root / "kb.yaml").write_text(
        f"llm:\n  base_url: {base_url}\n  backoff_s: 0.01\n  timeout_s: 60\n"
        "distill:\n  backend: llm\n  window_tokens: 3000\n",
        encoding="utf-8",
    )
    return root, len(trs)


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    while not sock.exists():
        time.sleep(0.05)
    return proc, f"redis+socket://{sock}"


def one(n_workers: int, copies: int, latency: float, scratch: Path) -> tuple[int, float, int]:
    folder = scratch / f"w{n_workers}"
    folder.mkdir()
    redis, url = start_redis(folder)

    def model(request):
        time.sleep(latency)
        return grounded_model(request)

    procs = []
    try:
        with OpenAIServer(model) as server:
            ws_root, n = workspace(folder / "ws", copies, server.base_url)
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("KB_")}, "PYTHONPATH": str(ROOT),
                   "KB_WORKERS_BROKER_URL": url}  # fmt: skip
            for _ in range(n_workers):
                cmd = [sys.executable, "-m", "pipeline", "-w", str(ws_root), "worker", "-Q", "llm,index", "-c", "1"]
                procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True))  # fmt: skip
            time.sleep(8)  # workers up and warm (imports), not part of the throughput
            ws = Workspace.at(ws_root, discover=False)
            settings = Settings.load(ws_root, **{"workers.broker_url": url})
            t0 = time.perf_counter()
            run_id = jobs_app.submit(settings, ws, steps=["distill"])
            while records.status(ws, run_id).outcome not in ("done", "failed"):
                time.sleep(0.2)
            took = time.perf_counter() - t0
            st = records.status(ws, run_id)
            return n, took, st.requests
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=60)
        redis.terminate()
        redis.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.3)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="kb-workers-bench-"))
    try:
        rows = [(w, *one(w, args.copies, args.latency, scratch)) for w in (1, 2)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # our own temp folder
    base = None
    for w, n, took, reqs in rows:
        rate = n / took * 3600
        base = base or rate
        print(f"{w} worker(s): {n} interviews, {reqs} LLM requests in {took:.1f} s = {rate:,.0f} interviews/hour")
    print(f"ratio 2 workers / 1 worker: {rows[1][1] / rows[1][2] / (rows[0][1] / rows[0][2]):.2f}x")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
