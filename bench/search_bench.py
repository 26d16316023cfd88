"""Benchmark the bundle's search core against a plain single-thread numpy exact scan.

For 10k and 100k passages (synthetic unit vectors, 384-d, ~4 passages per atom; synthetic
Zipf-distributed texts for BM25) it times, query by query and interleaved so a noisy neighbour
hits all alike (the order rotates per query):

- reference: ``scores = V @ q`` + top-10 (argpartition + sort): the memory floor of an exact scan;
- ``SearchCore`` dense path (what ``Bundle.search`` does for the vector: scan, top candidates,
  per-atom grouping, raw scores) -- target <= 1.3x the reference;
- the same with a type filter, and the full hybrid (dense + BM25 over every passage + RRF).

Query embedding is not included (a constant per query; see bench/service_bench.py for the end to
end figure). Prints p50/p99 and ratios; asserts nothing.
Usage: ``python bench/search_bench.py [--sizes 10000 100000] [--queries 300]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pipeline.index.lexical import Lexical, tokenize  # noqa: E402
from pipeline.index.search import SearchCore  # noqa: E402
from pipeline.models import ATOM_TYPES  # noqa: E402

DIM = 384
PER_ATOM = 4


def plain_scan(vectors: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    scores = vectors @ q
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx])]


def synthetic(n: int, rng: np.random.Generator):
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n_atoms = (n + PER_ATOM - 1) // PER_ATOM
    atom_of = np.minimum(np.arange(n) // PER_ATOM, n_atoms - 1)
    vocab = [f"term{i}" for i in range(20_000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    words = rng.choice(len(vocab), size=(n, 40), p=weights)
    texts = [" ".join(vocab[w] for w in row) for row in words]
    fields = {"type": [ATOM_TYPES[i % len(ATOM_TYPES)] for i in range(n_atoms)]}
    return vectors, atom_of, n_atoms, texts, fields, vocab


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values) * 1000, p))


def bench(n: int, queries: int, rng: np.random.Generator) -> None:
    t0 = time.perf_counter()
    vectors, atom_of, n_atoms, texts, fields, vocab = synthetic(n, rng)
    lexical = Lexical(tokenize(texts))
    built = time.perf_counter() - t0
    dense_core = SearchCore(vectors, atom_of, n_atoms, atom_fields=fields)
    hybrid_core = SearchCore(vectors, atom_of, n_atoms, lexical=lexical, atom_fields=fields)
    mask = dense_core.passage_mask({"type": ["error", "procedure"]})
    qs = vectors[rng.integers(0, n, queries)] + 0.05 * rng.standard_normal((queries, DIM), dtype=np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    qtexts = [" ".join(vocab[w] for w in rng.integers(0, 2000, 4)) for _ in range(queries)]

    runs = {
        "numpy exact scan (reference)": lambda i: plain_scan(vectors, qs[i]),
        "SearchCore dense": lambda i: dense_core.search(qs[i], "", k=10),
        "SearchCore dense + type filter": lambda i: dense_core.search(qs[i], "", k=10, mask=mask),
        "SearchCore hybrid (dense + BM25, RRF)": lambda i: hybrid_core.search(qs[i], qtexts[i], k=10),
        "BM25 scores alone (bm25s)": lambda i: lexical.scores(qtexts[i]),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(min(20, queries)):  # warm up
        for fn in runs.values():
            fn(i)
    names = list(runs)
    for i in range(queries):
        for j in range(len(names)):  # rotate the order per query: no method always runs first
            name = names[(i + j) % len(names)]
            t = time.perf_counter()
            runs[name](i)
            times[name].append(time.perf_counter() - t)
    # the dense core finds what the plain scan finds (one passage per atom at most, so compare atoms)
    agree = np.mean(
        [
            dense_core.search(qs[i], "", k=1)[0].atom == atom_of[plain_scan(vectors, qs[i], 1)[0]]
            for i in range(min(50, queries))
        ]
    )
    ref50, ref99 = pct(times["numpy exact scan (reference)"], 50), pct(times["numpy exact scan (reference)"], 99)
    print(f"\n{n:,} passages x {DIM} float32 ({n_atoms:,} atoms), {queries} queries, 1 thread; setup {built:.1f}s")
    print(f"{'':40} {'p50 ms':>8} {'p99 ms':>8} {'x ref p50':>10} {'x ref p99':>10}")
    for name, values in times.items():
        p50, p99 = pct(values, 50), pct(values, 99)
        print(f"{name:40} {p50:8.2f} {p99:8.2f} {p50 / ref50:10.2f} {p99 / ref99:10.2f}")
    print(f"top-1 atom agrees with the plain scan: {agree:.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for n in args.sizes:
        bench(n, args.queries, rng)


if __name__ == "__main__":
    main()
