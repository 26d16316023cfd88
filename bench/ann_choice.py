"""Which ANN library kb keeps: faiss-cpu vs hnswlib vs usearch on real vectors. Printed, never asserted.

Vectors: the real Podman + Argo CD passages (all-MiniLM-L6-v2), grown to each size by small
perturbations (``bench/realdata.py``); queries: the eval set's questions and atom titles,
embedded with the same model. For each library: build time, p50/p99 per query (one thread, one
query at a time) and recall@10 against the exact numpy scan, at comparable settings
(HNSW M=32, efConstruction=100, efSearch=64); plus the int8 exact scans (faiss SQ8, usearch i8).

    python bench/ann_choice.py [--sizes 10000 100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import realdata  # noqa: E402

M, EF_C, EF_S, K = 32, 100, 64, 10


def exact(vectors: np.ndarray, qs: np.ndarray, k: int = K) -> np.ndarray:
    out = np.empty((len(qs), k), dtype=np.int64)
    for i, q in enumerate(qs):
        s = vectors @ q
        idx = np.argpartition(-s, k - 1)[:k]
        out[i] = idx[np.argsort(-s[idx])]
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def libraries(vectors: np.ndarray) -> dict:
    """name -> (build seconds, search(q) -> ids)."""
    dim = vectors.shape[1]
    out = {}
    try:
        import faiss

        faiss.omp_set_num_threads(1)
        t = time.perf_counter()
        idx = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = EF_C
        idx.add(vectors)
        idx.hnsw.efSearch = EF_S
        out["faiss HNSW"] = (time.perf_counter() - t, lambda q, i=idx: i.search(q[None, :], K)[1][0])
        t = time.perf_counter()
        sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq.train(vectors)
        sq.add(vectors)
        out["faiss SQ8 exact"] = (time.perf_counter() - t, lambda q, i=sq: i.search(q[None, :], K)[1][0])
    except ImportError:
        print("faiss-cpu not installed: skipped")
    try:
        import hnswlib

        t = time.perf_counter()
        h = hnswlib.Index(space="ip", dim=dim)
        h.init_index(max_elements=len(vectors), ef_construction=EF_C, M=M // 2)  # hnswlib's M is per layer (2M at 0)
        h.set_num_threads(1)
        h.add_items(vectors, np.arange(len(vectors)))
        h.set_ef(EF_S)
        out["hnswlib"] = (time.perf_counter() - t, lambda q, i=h: i.knn_query(q, K)[0][0])
    except ImportError:
        print("hnswlib not installed: skipped")
    try:
        from usearch.index import Index

        for dtype in ("f32", "i8"):
            t = time.perf_counter()
            u = Index(
                ndim=dim, metric="ip", dtype=dtype, connectivity=M // 2, expansion_add=EF_C, expansion_search=EF_S
            )
            u.add(np.arange(len(vectors)), vectors, threads=1)
            out[f"usearch HNSW {dtype}"] = (time.perf_counter() - t, lambda q, i=u: i.search(q, K, threads=1).keys)
    except ImportError:
        print("usearch not installed: skipped")
    return out


def bench(n: int, qs: np.ndarray, real) -> None:
    vectors = realdata.grow_vectors(real.vectors, n)
    truth = exact(vectors, qs)
    libs = libraries(vectors)
    print(f"\n{n:,} real-derived vectors x {vectors.shape[1]}, {len(qs)} real queries, 1 thread")
    t_ref = []
    for q in qs:
        t = time.perf_counter()
        exact(vectors, q[None, :])
        t_ref.append(time.perf_counter() - t)
    ref = float(np.median(t_ref)) * 1000
    print(f"{'':22} {'build s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x exact':>8} {'recall@10':>10}")
    print(f"{'numpy exact (ref)':22} {0:8.1f} {ref:8.3f} {np.percentile(t_ref, 99) * 1000:8.3f} {1:8.2f} {1:10.3f}")
    for name, (build, fn) in libs.items():
        for q in qs[:20]:
            fn(q)
        times, found = [], []
        for q in qs:
            t = time.perf_counter()
            ids = fn(q)
            times.append(time.perf_counter() - t)
            found.append(np.asarray(ids, dtype=np.int64))
        p50 = float(np.median(times)) * 1000
        print(
            f"{name:22} {build:8.1f} {p50:8.3f} {np.percentile(times, 99) * 1000:8.3f} {p50 / ref:8.2f} "
            f"{recall(np.array(found), truth):10.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    real = realdata.real_passages()
    qs = realdata.query_vectors(real)
    qs = np.concatenate([qs] * (1 + args.queries // len(qs)))[: args.queries]
    for n in args.sizes:
        bench(n, qs, real)


if __name__ == "__main__":
    main()
