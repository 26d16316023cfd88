"""Real passages and queries for the speed benchmarks, embedded once and cached.

The Podman + Argo CD docs shipped in ``tests/data/docs`` are imported (``kb import-docs``) and
exported (``kb export``) into a temporary workspace; the bundle's passages (texts, BM25 tokens,
all-MiniLM-L6-v2 vectors) and the eval set's questions (the FAQ questions, plus every atom title
as a query) are cached in ``build/bench-cache/real-<hash>.npz``. ``grow(n)`` reaches 10k / 100k /
1M passages by small perturbations of real vectors (each copy leans towards another real passage
and gets a little noise), so HNSW sees the clustering of real embeddings, not random unit vectors.
Used by ``bench/speed_bench.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "tests" / "data" / "docs"
CACHE = ROOT / "build" / "bench-cache"


@dataclass
class Real:
    """The real passages (rows as in the bundle), their vectors, and real query texts."""

    atoms: list[tuple]
    passages: list[tuple]
    vectors: np.ndarray
    queries: list[str]
    bundle: Path | None = None


def _docs_hash() -> str:
    h = hashlib.sha256()
    for f in sorted((DOCS / "podman").rglob("*.md")) + sorted((DOCS / "argocd").rglob("*.md")):
        h.update(f.relative_to(DOCS).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def real_passages() -> Real:
    """Import + export the docs once; later calls read the cache (no model load)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = _docs_hash()
    cached = CACHE / f"real-{key}.npz"
    rows = CACHE / f"real-{key}.json"
    bundle = CACHE / f"real-{key}.duckdb"
    if cached.is_file() and rows.is_file() and bundle.is_file():
        data = json.loads(rows.read_text(encoding="utf-8"))
        return Real(
            [tuple(r) for r in data["atoms"]],
            [tuple(r) for r in data["passages"]],
            np.load(cached)["vectors"],
            data["queries"],
            bundle,
        )
    from pipeline.index.bundle import _read_content

    given = os.environ.get("KB_BENCH_REAL_BUNDLE")  # a bundle already exported from the same docs
    if given:
        content = _read_content(Path(given))
        shutil.copyfile(given, bundle)
    else:
        content = _export(bundle)
    queries = [q for _, _, q, _ in content.faq] + [a[3] for a in content.atoms]
    np.savez(cached, vectors=content.vectors)
    rows.write_text(
        json.dumps({"atoms": content.atoms, "passages": content.passages, "queries": queries}, default=str),
        encoding="utf-8",
    )
    return Real(content.atoms, content.passages, content.vectors, queries, bundle)


def _export(bundle: Path):
    from pipeline.index.bundle import _read_content

    with tempfile.TemporaryDirectory(prefix="kb-real-") as tmp:
        ws = Path(tmp) / "ws"
        kb = [sys.executable, "-m", "pipeline"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KB_THREADS": "1"}
        subprocess.run([*kb, "init", str(ws)], check=True, env=env, stdout=subprocess.DEVNULL)
        for name in ("podman", "argocd"):
            subprocess.run(
                [*kb, "import-docs", str(DOCS / name)], cwd=ws, check=True, env=env, stdout=subprocess.DEVNULL
            )
        out = Path(tmp) / "real.duckdb"
        subprocess.run([*kb, "export", "--out", str(out)], cwd=ws, check=True, env=env, stdout=subprocess.DEVNULL)
        content = _read_content(out)
        shutil.copyfile(out, bundle)
    return content


def perturb(src: np.ndarray, base: np.ndarray, seed: int = 0, lean: float = 0.3, noise: float = 0.02) -> np.ndarray:
    """Unit vectors near ``src``: each leans towards a random real vector of ``base``, plus noise."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(src, dtype=np.float32)
    step = 200_000
    for start in range(0, len(src), step):
        s = src[start : start + step]
        v = s + lean * rng.random((len(s), 1), dtype=np.float32) * base[rng.integers(0, len(base), len(s))]
        v += noise * rng.standard_normal(v.shape, dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start : start + step] = v
    return out


def grow_vectors(base: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: the real ones first, then perturbed copies of them."""
    m = len(base)
    if n <= m:
        return np.ascontiguousarray(base[:n], dtype=np.float32)
    return np.concatenate([base, perturb(base[np.arange(m, n) % m], base, seed)])


def grow_content(real: Real, n: int, seed: int = 0):
    """A ``BundleContent`` of ``n`` passages: real atoms repeated as variants ``<id>--vK``.

    Variant K of an atom carries the same passages (text + ' (variant K)') and perturbed vectors.
    """
    from pipeline.index.bundle import BundleContent

    by_atom: dict[str, list[tuple]] = {}
    for p in real.passages:
        by_atom.setdefault(p[1], []).append(p)
    atoms = sorted(real.atoms, key=lambda r: r[0])
    content = BundleContent()
    ids: list[int] = []
    variant: list[bool] = []
    k = 0
    while len(content.passages) < n:
        for a in atoms:
            if len(content.passages) >= n:
                break
            aid = a[0] if k == 0 else f"{a[0]}--v{k}"
            suffix = "" if k == 0 else f" (variant {k})"
            content.atoms.append((aid, a[1], a[2], a[3] + suffix, a[4], a[5], a[6], a[7], a[8]))
            for p in by_atom.get(a[0], []):
                if len(content.passages) >= n:
                    break
                pid = len(content.passages)
                tokens = list(p[8] or []) + ([f"variant{k}"] if k else [])
                content.passages.append((pid, aid, p[2], p[3], p[4], p[5], p[6] + suffix, p[7] + suffix, tokens))
                ids.append(int(p[0]))
                variant.append(k > 0)
        k += 1
    vectors = real.vectors[np.array(ids)]
    copies = np.flatnonzero(np.array(variant))
    if len(copies):  # each variant stays near its own source passage
        vectors[copies] = perturb(vectors[copies], real.vectors, seed)
    content.sort()
    # passages of one atom contiguous, in atom id order (the bundle's layout), ids renumbered
    order = sorted(range(len(content.passages)), key=lambda i: (content.passages[i][1], content.passages[i][2], i))
    content.passages = [(new, *content.passages[i][1:]) for new, i in enumerate(order)]
    content.vectors = np.ascontiguousarray(vectors[np.array(order)], dtype=np.float32)
    return content


def unique_queries(real: Real, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct query texts built from the real ones (a real query + a varying context)."""
    rng = np.random.default_rng(seed)
    contexts = ["on macOS", "in production", "after an upgrade", "with rootless podman", "in a new cluster",
                "on Linux", "behind a proxy", "for a single app", "since yesterday", "on Windows"]  # fmt: skip
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(out) < n:
        q = real.queries[i % len(real.queries)]
        extra = (
            f" {contexts[int(rng.integers(0, len(contexts)))]} (#{i // len(real.queries)})"
            if i >= len(real.queries)
            else ""
        )
        text = q + extra
        if text not in seen:
            seen.add(text)
            out.append(text)
        i += 1
    return out


def query_vectors(real: Real, texts: list[str] | None = None) -> np.ndarray:
    """The real queries embedded with the bundle's model (cached beside the passages)."""
    texts = real.queries if texts is None else texts
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    cached = CACHE / f"queries-{key}.npy"
    if cached.is_file():
        return np.load(cached)
    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import read_manifest

    vectors = embedder_for_manifest(read_manifest(real.bundle)).encode(texts)
    np.save(cached, vectors)
    return vectors
