"""Dense candidate search: exact scan (default), HNSW or int8 (faiss), chosen by ``serve.dense``.

``auto`` keeps the exact scan below ``AUTO_THRESHOLD`` passages (measured: under it the exact
numpy scan is already below a millisecond or two and an approximate index buys little, see
bench/ann_choice.py) and uses HNSW above. faiss-cpu was kept by measurement against hnswlib and
usearch on real vectors (build time, p50, recall@10; ``kb-atoms[ann]``); it also gives the int8
scalar-quantised exact scan and searches restricted to a filter's passages.

Every approximate result is re-scored with the float32 vectors (so scores equal the exact ones);
a made index is checked against the exact scan (recall@10 over sample queries) and refused with
a ``BundleError`` when it falls short. Filters keep their recall: a narrow filter is scanned
exactly over its own passages; a wide one searches the index restricted to its passages with a
wider beam, and falls back to the exact scan when that finds too few.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BundleError, MissingDependencyError

DENSE_MODES = ("auto", "exact", "hnsw", "int8")
AUTO_THRESHOLD = 200_000  # passages; below it `auto` is the exact scan (bench/ann_choice.py)
NARROW_FILTER = 0.02  # a filter keeping fewer passages than this share is scanned exactly
ANN_FORMAT = 1


@dataclass(frozen=True)
class AnnParams:
    """How an approximate index is built and searched (``serve.hnsw_*``)."""

    kind: str = "hnsw"  # hnsw | int8
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 64
    min_recall: float = 0.99


def resolve_mode(mode: str, n: int, threshold: int = AUTO_THRESHOLD) -> str:
    """``auto`` -> exact below ``threshold`` passages, hnsw at or above."""
    if mode not in DENSE_MODES:
        raise BundleError(f"serve.dense is '{mode}'.", f"Use one of: {', '.join(DENSE_MODES)}.")
    if mode == "auto":
        return "exact" if n < threshold else "hnsw"
    return mode


def _faiss():
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError(
            "faiss-cpu", "ann", "Approximate dense search (serve.dense: hnsw or int8)"
        ) from None
    faiss.omp_set_num_threads(1)
    return faiss


def top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, best first (ties: lower index)."""
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")
    idx = np.argpartition(-scores, n - 1)[:n]
    return idx[np.lexsort((idx, -scores[idx]))]


class ExactDense:
    """The float32 scan at the memory floor; what every other index is checked against."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    def top(self, q: np.ndarray, depth: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors @ q
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        ids = top(scores, depth)
        ids = ids[np.isfinite(scores[ids])]
        return ids, scores[ids]


class FaissDense:
    """HNSW (``IndexHNSWFlat``) or int8 (``IndexScalarQuantizer`` QT_8bit) over the same vectors."""

    def __init__(self, vectors: np.ndarray, params: AnnParams, index: Any = None):
        self.vectors = vectors
        self.params = params
        self.kind = params.kind
        self._faiss = _faiss()
        self.index = index if index is not None else self._build()
        if self.index.ntotal != len(vectors) or self.index.d != vectors.shape[1]:
            raise BundleError(
                f"The {self.kind} index holds {self.index.ntotal} x {self.index.d} vectors, the bundle {vectors.shape}.",
                "Delete the index file beside the bundle; kb serve rebuilds it.",
            )
        self._exact = ExactDense(vectors)
        self._params: dict[int, Any] = {}  # efSearch -> a reusable SearchParameters (read-only in search)

    def _build(self) -> Any:
        faiss, dim, p = self._faiss, self.vectors.shape[1], self.params
        if p.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, p.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = p.ef_construction
        elif p.kind == "int8":
            index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            index.train(self.vectors)
        else:
            raise BundleError(f"Unknown dense index kind '{p.kind}'.", "Use serve.dense: exact, hnsw or int8.")
        if len(self.vectors):
            index.add(self.vectors)
        return index

    def _search_params(self, ef: int, selector: Any) -> Any:
        """The search parameters; the unfiltered ones are made once per efSearch (building a
        SWIG ``SearchParameters`` costs about as much as a tenth of an HNSW search)."""
        faiss = self._faiss
        if selector is None and ef in self._params:
            return self._params[ef]
        params = faiss.SearchParametersHNSW(efSearch=ef) if self.kind == "hnsw" else faiss.SearchParameters()
        if selector is None:
            return self._params.setdefault(ef, params)
        params.sel = selector
        return params

    def _search(self, q: np.ndarray, n: int, selector: Any = None, ef: int | None = None) -> np.ndarray:
        faiss = self._faiss
        ef = max(ef or self.params.ef_search, n) if self.kind == "hnsw" else 0
        params = self._search_params(ef, selector)
        x = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        dist = np.empty((1, n), dtype=np.float32)
        ids = np.empty((1, n), dtype=np.int64)
        # search_c: faiss' C++ entry point under its numpy wrapper (which re-checks and re-allocates)
        self.index.search_c(1, faiss.swig_ptr(x), n, faiss.swig_ptr(dist), faiss.swig_ptr(ids), params)
        found = ids[0]
        return found[found >= 0]

    def top(self, q: np.ndarray, depth: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.vectors)
        depth = min(depth, n)
        if mask is None:
            ids = self._search(q, depth)
        else:
            keep = np.flatnonzero(mask)
            if len(keep) <= max(depth, NARROW_FILTER * n):  # narrow: exact over the filter's own passages
                scores = self.vectors[keep] @ q
                order = top(scores, depth)
                return keep[order], scores[order]
            share = len(keep) / n
            bits = np.packbits(mask, bitorder="little")  # kept alive while faiss reads it
            selector = self._faiss.IDSelectorBitmap(n, self._faiss.swig_ptr(bits))
            ef = int(min(4096, self.params.ef_search / share))
            ids = self._search(q, depth, selector, ef)
            if len(ids) < depth:
                return self._exact.top(q, depth, mask)
        scores = self.vectors.take(ids, axis=0) @ q  # float32 re-score: the same scores as the exact scan
        order = np.lexsort((ids, -scores))
        return ids[order], scores[order]

    # files ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self._faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, vectors: np.ndarray, params: AnnParams, data: bytes) -> FaissDense:
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if params.kind == "hnsw":
            index.hnsw.efSearch = params.ef_search
        return cls(vectors, params, index)


def sample_queries(vectors: np.ndarray, n: int = 200, seed: int = 0) -> np.ndarray:
    """Query-like probes: stored passages (titles and FAQ questions are passages too). Means of
    two random passages were tried and are far harder than real queries (recall 0.87 where the
    eval questions reach 0.996 on the same index), so they would refuse good indexes."""
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(vectors[rng.integers(0, len(vectors), min(n, len(vectors)))], dtype=np.float32)


def measure_recall(index: Any, exact: ExactDense, queries: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-``k`` that ``index`` finds."""
    if not len(queries) or not len(exact.vectors):
        return 1.0
    got = []
    for q in queries:
        want = set(exact.top(q, k)[0].tolist())
        got.append(len(want & set(index.top(q, k)[0].tolist())) / max(1, len(want)))
    return float(np.mean(got))


MAX_AUTO_EF = 1024  # `auto` widens efSearch up to this before it gives up on HNSW


def checked(index: FaissDense, queries: np.ndarray | None = None, widen: bool = False) -> FaissDense:
    """``index`` when its recall@10 vs the exact scan reaches ``params.min_recall``; else refused.

    ``widen`` (``serve.dense: auto``): an HNSW index short of the target is retried with efSearch
    doubled (a search parameter: no rebuild) up to ``MAX_AUTO_EF``, so ``auto`` does not refuse to
    serve a large bundle that the default beam is too narrow for (measured: 100k real-derived
    passages reach 0.965 at efSearch 64)."""
    vectors = index.vectors
    qs = sample_queries(vectors) if queries is None else queries
    exact = ExactDense(vectors)
    found = measure_recall(index, exact, qs)
    while widen and index.kind == "hnsw" and found < index.params.min_recall and index.params.ef_search < MAX_AUTO_EF:
        index.params = replace(index.params, ef_search=min(MAX_AUTO_EF, 2 * index.params.ef_search))
        found = measure_recall(index, exact, qs)
    if found < index.params.min_recall:
        p = index.params
        raise BundleError(
            f"The {p.kind} index reaches recall@10 {found:.3f} against the exact scan, below serve.min_recall "
            f"{p.min_recall} (M={p.m}, efSearch={p.ef_search}); it is not used.",
            "Raise serve.hnsw_ef_search / serve.hnsw_m, or serve this bundle with serve.dense: exact.",
        )
    index.recall = found  # type: ignore[attr-defined]  # the index carries its measured recall (faiss objects take attributes)
    return index


def index_path(bundle: Path, params: AnnParams) -> Path:
    """Where the index of ``bundle`` is kept: ``dist/kb-X.<kind>.faiss`` (+ ``.json`` with its checksum)."""
    tag = f"{params.kind}-m{params.m}-efc{params.ef_construction}" if params.kind == "hnsw" else params.kind
    return bundle.with_name(f"{bundle.stem}.{tag}.faiss")


def save_index(path: Path, index: FaissDense, bundle_checksum: str) -> None:
    """Write the index and its sidecar (sha256 of the index bytes + the bundle's checksum), atomically."""
    from pipeline.workspace import atomic_write_bytes, atomic_write_text

    data = index.to_bytes()
    meta = {
        "format": ANN_FORMAT,
        "bundle_checksum": bundle_checksum,
        "sha256": hashlib.sha256(data).hexdigest(),
        "params": asdict(index.params),
        "n": len(index.vectors),
        "recall": getattr(index, "recall", None),
    }
    atomic_write_bytes(path, data)
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")


def load_index(path: Path, vectors: np.ndarray, params: AnnParams, bundle_checksum: str) -> FaissDense:
    """Read a saved index; refused (``BundleError``) when its checksum, bundle or size do not match."""
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        raise BundleError(f"The dense index {path} cannot be read ({exc}).", "Delete it; kb rebuilds it.") from None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise BundleError(
            f"The dense index {path} fails its checksum (changed or cut short).", "Delete it; kb rebuilds it."
        )
    if meta.get("bundle_checksum") != bundle_checksum or meta.get("n") != len(vectors):
        raise BundleError(f"The dense index {path} belongs to another bundle.", "Delete it; kb rebuilds it.")
    saved_ef = int((meta.get("params") or {}).get("ef_search") or 0)
    if params.kind == "hnsw" and saved_ef > params.ef_search:  # widened by `auto` when it was made
        params = replace(params, ef_search=saved_ef)
    index = FaissDense.from_bytes(vectors, params, data)
    index.recall = meta.get("recall")  # type: ignore[attr-defined]  # the index carries its measured recall (faiss objects take attributes)
    return index


def dense_index(
    vectors: np.ndarray,
    mode: str,
    params: AnnParams,
    *,
    bundle: Path | None = None,
    bundle_checksum: str = "",
    threshold: int = AUTO_THRESHOLD,
    save: bool = True,
) -> ExactDense | FaissDense:
    """The dense index ``mode`` asks for: exact, or a faiss index read from beside the bundle
    (when present and matching) or built now, checked, and saved there for the next load."""
    kind = resolve_mode(mode, len(vectors), threshold)
    if kind == "exact" or not len(vectors):
        return ExactDense(vectors)
    params = AnnParams(**{**asdict(params), "kind": kind})
    path = index_path(bundle, params) if bundle is not None else None
    if path is not None and path.is_file():
        return load_index(path, vectors, params, bundle_checksum)
    index = checked(FaissDense(vectors, params), widen=mode == "auto")
    if path is not None and save:
        try:
            save_index(path, index, bundle_checksum)
        except OSError:  # a read-only dist/ still serves; it rebuilds next time
            pass
    return index
