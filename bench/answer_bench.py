"""Benchmark what answerability + history add to an offline answer (``/v1/ask`` without an LLM).

Over atoms imported from the real Podman + Argo CD docs (tests/data/docs, or ``--bundle``), in
one process and interleaved per question so a noisy neighbour hits both alike:

- reference: what ``/v1/ask`` did before issue 10: one search (k=5), the best cosine against a
  threshold, the extractive answer;
- answer(): ``pipeline.answer.answer`` with its answerability signals (term coverage, specificity, focus, missing
  salient words) and, for the conversation questions, the history (follow-up detection and the
  combined search).

Both include embedding the question (the dominant cost). Prints p50/p99 and the p50 ratio
(target <= 1.2); asserts nothing. Usage: ``python bench/answer_bench.py [--bundle FILE] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = ROOT / "tests" / "data" / "eval"


def build(tmp: Path) -> Path:
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export, import_docs
    from pipeline.stages import init as init_stage
    from pipeline.workspace import Workspace

    root = tmp / "ws"
    init_stage.run(root)
    ws = Workspace.at(root, discover=False)
    settings = Settings.load(root)
    for name in ("podman", "argocd"):
        import_docs.run(settings, ws, Reporter(), ROOT / "tests" / "data" / "docs" / name, tags=[name])
    out = tmp / "kb-bench.duckdb"
    export.run(settings, ws, Reporter(), out=out)
    return out


def percentile_ms(xs: list[float], q: float) -> float:
    """The ``q`` quantile of ``xs`` (seconds), in milliseconds."""
    return sorted(xs)[int(q * (len(xs) - 1))] * 1000


def reference(bundle, question: str, threshold: float):
    from pipeline.answer.core import _extractive_answer

    hits = bundle.search(question, k=5)
    evidence = max((h.dense_score for h in hits), default=0.0)
    base = {"answered_question": question, "evidence": evidence, "threshold": threshold}
    result = _extractive_answer(bundle, question, hits, base) if hits else None
    if result is not None and evidence < threshold:
        result.uncertain = True
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from pipeline.answer import answer
    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats
    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.config import Settings
    from pipeline.index.bundle import Bundle

    with tempfile.TemporaryDirectory(prefix="kb-answer-bench-") as tmp:
        path = args.bundle or build(Path(tmp))
        bundle = Bundle.load(path, embedder_for_manifest)
        settings = Settings.load(None)
        t0 = time.perf_counter()
        stats = TermStats.of(bundle)
        cal = calibrate(bundle, settings, stats)
        load_s = time.perf_counter() - t0
        items: list[tuple[str, list]] = [(json.loads(line)["question"], []) for line in (SETS / "dev.jsonl").open()]
        for line in (SETS / "conversations-dev.jsonl").open():
            turns = json.loads(line)["turns"]
            history = []
            for t in turns[:-1]:
                history += [{"role": "user", "content": t}, {"role": "assistant", "content": "…"}]
            items.append((turns[-1], history))
        bundle.embedder.encode(["warm up"])
        ref_t, new_t = [], []
        for r in range(args.rounds):
            for i, (q, history) in enumerate(items):
                order = (i + r) % 2
                for which in (0, 1) if order == 0 else (1, 0):
                    start = time.perf_counter()
                    if which == 0:
                        reference(bundle, q, cal.threshold)
                        ref_t.append(time.perf_counter() - start)
                    else:
                        answer(bundle, q, settings, history=history, threshold=cal.threshold, stats=stats)
                        new_t.append(time.perf_counter() - start)
        bundle.close()

    print(f"{len(items)} questions x {args.rounds} rounds; calibration + term statistics at load: {load_s:.2f} s")
    print(
        f"reference (search + cosine threshold): p50 {percentile_ms(ref_t, 0.5):.2f} ms  p99 {percentile_ms(ref_t, 0.99):.2f} ms"
    )
    print(
        f"answer() (answerability + history):    p50 {percentile_ms(new_t, 0.5):.2f} ms  p99 {percentile_ms(new_t, 0.99):.2f} ms"
    )
    print(f"p50 ratio {statistics.median(new_t) / statistics.median(ref_t):.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
