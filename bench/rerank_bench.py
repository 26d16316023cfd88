"""What a configured cross-encoder (``serve.reranker``) costs an offline answer, and calibration at load.

No cross-encoder weights are on this machine, so the model is one of the shape of
cross-encoder/ms-marco-MiniLM-L-6-v2 (BERT, 6 layers, 384 wide, 12 heads, MiniLM's tokenizer) with
random weights: what it computes per pair does not depend on the weights, what it says does. So this
measures the price, never the quality (measure that with ``kb eval --questions FILE`` and a real model).

Over atoms imported from the real Podman + Argo CD docs (or ``--bundle``), in one process, interleaved
per question: ``answer()`` as shipped (the signals) against ``answer()`` with the reranker reading the
top ``serve.rerank_depth`` atoms. Prints p50/p99, the p50 ratio and the calibration time of each;
asserts nothing. Usage: ``python bench/rerank_bench.py [--bundle FILE] [--rounds 3] [--depth 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

# answer_bench (beside this script) sets the offline, one-thread environment and puts the checkout on sys.path
from answer_bench import SETS, build, percentile_ms


def cross_encoder_of_minilm_shape(folder: Path) -> Path:
    """A random-weight relevance cross-encoder shaped like ms-marco-MiniLM-L-6-v2, saved to ``folder``."""
    from tests.rerank_support import save_random_cross_encoder

    return save_random_cross_encoder(folder, hidden=384, layers=6, heads=12, intermediate=1536)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--depth", type=int, default=5, help="serve.rerank_depth")
    args = ap.parse_args()

    from pipeline.answer import answer
    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats
    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.config import Settings
    from pipeline.index.bundle import Bundle

    with tempfile.TemporaryDirectory(prefix="kb-rerank-bench-") as tmp:
        path = args.bundle or build(Path(tmp))
        model = cross_encoder_of_minilm_shape(Path(tmp) / "ce")
        bundle = Bundle.load(path, embedder_for_manifest)
        plain = Settings.load(None)
        ranked = Settings.load(None, **{"serve.reranker": str(model), "serve.rerank_depth": args.depth})
        stats = TermStats.of(bundle)
        loads = []
        for settings in (plain, ranked):
            t0 = time.perf_counter()
            calibrate(bundle, settings, stats)
            loads.append(time.perf_counter() - t0)
        questions = [json.loads(line)["question"] for line in (SETS / "dev.jsonl").open()]
        bundle.embedder.encode(["warm up"])
        times: tuple[list[float], list[float]] = ([], [])
        for r in range(args.rounds):
            for i, q in enumerate(questions):
                for which in (0, 1) if (i + r) % 2 == 0 else (1, 0):
                    settings = (plain, ranked)[which]
                    start = time.perf_counter()
                    answer(bundle, q, settings, threshold=0.0, stats=stats)
                    times[which].append(time.perf_counter() - start)
        bundle.close()

    print(f"{len(questions)} questions x {args.rounds} rounds; reranker reads {args.depth} atoms per question")
    print(f"calibration at load: signals {loads[0]:.2f} s, with the reranker {loads[1]:.2f} s")
    print(
        f"answer(), signals:       p50 {percentile_ms(times[0], 0.5):.2f} ms  p99 {percentile_ms(times[0], 0.99):.2f} ms"
    )
    print(
        f"answer(), with reranker: p50 {percentile_ms(times[1], 0.5):.2f} ms  p99 {percentile_ms(times[1], 0.99):.2f} ms"
    )
    print(f"p50 ratio {statistics.median(times[1]) / statistics.median(times[0]):.3f} (opt-in: no target)")


if __name__ == "__main__":
    main()
