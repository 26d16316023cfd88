"""Issue 16: the fast serving path keeps the answers.

- the ANN (HNSW / int8) dense index: same top-1 as the exact scan on the eval questions, filters
  without recall loss, the made index checked (recall) and refused when short, its file
  checksummed and refused when cut short or from another bundle;
- the int8 query encoder checked (cosine, recall@5) and refused when it falls short;
- micro-batching: concurrent queries get the same vectors and the same hits as sequential ones;
- the LRU query cache, and ``kb embed onnx --out DIR`` (a torch-free model folder).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from bundle_support import embedder

from pipeline.errors import BundleError, MissingModelError
from tests.service.test_service import Server, built, make_app  # noqa: F401  (session fixture reused)

faiss = pytest.importorskip("faiss", reason="kb-atoms[ann] (faiss-cpu) is not installed")


def _grow(vectors: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Real vectors grown by small perturbations (as bench/realdata.py does)."""
    rng = np.random.default_rng(seed)
    src = vectors[np.arange(n) % len(vectors)]
    v = src + 0.3 * rng.random((n, 1), dtype=np.float32) * vectors[rng.integers(0, len(vectors), n)]
    v += 0.05 * rng.standard_normal(v.shape, dtype=np.float32)
    v[: len(vectors)] = vectors[: min(n, len(vectors))]
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def loaded(built):  # noqa: F811
    from pipeline.index.bundle import Bundle

    _, path, emb = built
    return Bundle.load(path, emb)


@pytest.fixture(scope="module")
def grown(loaded):
    """4k passages of real-derived vectors and the eval questions' vectors."""
    questions = [q for _, q, _ in loaded.faq_questions()]
    return _grow(loaded.core.vectors, 4_000), embedder().encode(questions)


def test_ann_bundle_answers_the_same_top1_as_exact(built, loaded):  # noqa: F811
    from pipeline.index.bundle import Bundle

    _, path, emb = built
    for kind in ("hnsw", "int8"):
        ann = Bundle.load(path, emb, dense=kind)
        assert ann.dense_kind == kind and ann.core.dense_index is not None
        questions = loaded.faq_questions()
        same = [loaded.search(q, k=5)[0].atom_id == ann.search(q, k=5)[0].atom_id for _, q, _ in questions]
        assert np.mean(same) >= 0.95, (kind, np.mean(same))
        for _, q, _ in questions[:5]:  # scores are the exact ones (candidates re-scored in float32)
            a, b = loaded.search(q, k=3)[0], ann.search(q, k=3)[0]
            if a.atom_id == b.atom_id:
                assert a.dense_score == pytest.approx(b.dense_score, abs=1e-6)
    # the index was saved beside the bundle with its checksum, and is read back next time
    assert list(path.parent.glob(f"{path.stem}.hnsw-*.faiss")) and list(path.parent.glob(f"{path.stem}.hnsw-*.json"))
    again = Bundle.load(path, emb, dense="hnsw")
    assert again.search("admin password", k=1)[0].atom_id == loaded.search("admin password", k=1)[0].atom_id


def test_ann_core_top1_and_filters_keep_recall(grown):
    from pipeline.index.ann import AnnParams, ExactDense, FaissDense, checked, measure_recall

    vectors, qs = grown
    exact = ExactDense(vectors)
    hnsw = checked(FaissDense(vectors, AnnParams(min_recall=0.95)))
    assert measure_recall(hnsw, exact, qs) >= 0.95
    top1 = [hnsw.top(q, 10)[0][0] == exact.top(q, 10)[0][0] for q in qs]
    assert np.mean(top1) >= 0.95
    rng = np.random.default_rng(3)
    for share in (0.01, 0.3, 0.9):  # narrow (exact over the filter), wide (restricted HNSW)
        mask = rng.random(len(vectors)) < share
        found = [
            len(set(hnsw.top(q, 10, mask)[0]) & set(exact.top(q, 10, mask)[0])) / 10 for q in qs
        ]  # fmt: skip
        assert np.mean(found) >= 0.95, (share, np.mean(found))
        assert all(mask[hnsw.top(q, 10, mask)[0]].all() for q in qs[:5])


def test_ann_index_refused_when_recall_falls_short(grown):
    from pipeline.index.ann import AnnParams, FaissDense, checked

    vectors, qs = grown
    weak = FaissDense(vectors, AnnParams(m=2, ef_construction=8, ef_search=1, min_recall=0.9999))
    with pytest.raises(BundleError, match=r"recall@10 .* below serve.min_recall") as exc:
        checked(weak, qs)
    assert "serve.dense: exact" in exc.value.hint


def test_auto_widens_ef_search_instead_of_refusing(tmp_path):
    """``serve.dense: auto`` retries a short HNSW index with a wider beam (no rebuild) and keeps
    the efSearch that passed in the sidecar; an explicit ``hnsw`` with the same beam is refused."""
    from pipeline.index.ann import AnnParams, dense_index

    rng = np.random.default_rng(5)  # clustered: efSearch 10 reaches ~0.97 here, 32 ~0.997
    centres = rng.standard_normal((50, 64)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, 4000)] + 0.8 * rng.standard_normal((4000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = AnnParams(m=8, ef_construction=40, ef_search=1, min_recall=0.99)
    with pytest.raises(BundleError, match="below serve.min_recall"):
        dense_index(vectors, "hnsw", params)
    bundle = tmp_path / "kb-x.duckdb"
    index = dense_index(vectors, "auto", params, bundle=bundle, bundle_checksum="abc", threshold=1)
    assert index.kind == "hnsw" and index.params.ef_search > 1 and index.recall >= 0.95
    again = dense_index(vectors, "auto", params, bundle=bundle, bundle_checksum="abc", threshold=1)
    assert again.params.ef_search == index.params.ef_search  # read back from the sidecar


def test_ann_index_file_checked_and_refused_when_short(tmp_path, grown):
    from pipeline.index.ann import AnnParams, FaissDense, load_index, save_index

    vectors, _ = grown
    params = AnnParams()
    path = tmp_path / "kb-x.hnsw.faiss"
    save_index(path, FaissDense(vectors, params), "abc")
    assert load_index(path, vectors, params, "abc").index.ntotal == len(vectors)
    with pytest.raises(BundleError, match="another bundle"):
        load_index(path, vectors, params, "other-checksum")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # cut short
    with pytest.raises(BundleError, match="fails its checksum"):
        load_index(path, vectors, params, "abc")


def test_auto_mode_threshold():
    from pipeline.index.ann import resolve_mode

    assert resolve_mode("auto", 10_000, 200_000) == "exact"
    assert resolve_mode("auto", 300_000, 200_000) == "hnsw"
    assert resolve_mode("int8", 10, 200_000) == "int8"
    with pytest.raises(BundleError):
        resolve_mode("fast", 10)


# -- query encoder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_float(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="kb-atoms[onnx] is not installed")
    from pipeline.backends.embed import resolve_model
    from pipeline.backends.embed.onnx import OnnxEmbedder

    return OnnxEmbedder(resolve_model("all-MiniLM-L6-v2"))


def test_int8_encoder_checked_and_refused_when_short(tmp_path, onnx_float):
    from pipeline.backends.embed import resolve_model
    from pipeline.backends.embed.fast import check_quantised, quantise_onnx
    from pipeline.backends.embed.onnx import OnnxEmbedder
    from pipeline.service.encoder import PROBES

    int8_path = quantise_onnx(onnx_float.onnx_path, tmp_path / "model.int8.onnx")
    assert int8_path.stat().st_size < onnx_float.onnx_path.stat().st_size / 2
    assert quantise_onnx(onnx_float.onnx_path, int8_path) == int8_path  # made once: its sidecar matches
    int8 = OnnxEmbedder(resolve_model("all-MiniLM-L6-v2"), onnx_path=int8_path)
    assert check_quantised(onnx_float, int8, PROBES) >= 0.99
    with pytest.raises(MissingModelError, match="cosine of only"):
        check_quantised(onnx_float, int8, PROBES, min_cosine=0.99999)


class _Degraded:
    """A broken quantisation: the float model's vectors plus heavy noise."""

    model_id, dim, max_tokens = "all-MiniLM-L6-v2", 384, 256

    def __init__(self, inner):
        self.float_embedder = inner
        self._rng = np.random.default_rng(0)

    def encode(self, texts):
        v = self.float_embedder.encode(texts) + 0.2 * self._rng.standard_normal((len(texts), 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_int8_recall_check_refuses_a_worse_encoder(built):  # noqa: F811
    from pipeline.index.bundle import Bundle
    from pipeline.service.encoder import check_int8_recall

    _, path, emb = built
    bad = Bundle.load(path, _Degraded(emb))
    with pytest.raises(MissingModelError, match=r"recall@5 .* below the float"):
        check_int8_recall(bad)
    assert check_int8_recall(Bundle.load(path, emb)) is None  # a float encoder is not checked


def test_micro_batching_equals_sequential(onnx_float):
    from pipeline.backends.embed.fast import BatchingEmbedder

    texts = [f"Why does podman fail with error number {i} on a rootless setup?" for i in range(24)]
    sequential = np.stack([onnx_float.encode([t])[0] for t in texts])
    batcher = BatchingEmbedder(onnx_float, window_ms=20, max_batch=8)
    try:
        barrier = threading.Barrier(len(texts))

        def one(t):
            barrier.wait()
            return batcher.encode([t])[0]

        with ThreadPoolExecutor(len(texts)) as pool:
            concurrent = np.stack(list(pool.map(one, texts)))
    finally:
        batcher.close()
    assert np.allclose(concurrent, sequential, atol=2e-6)
    assert batcher.batched == len(texts) and batcher.batches < len(texts)  # really batched


def test_concurrent_http_searches_equal_sequential(built):  # noqa: F811
    httpx = pytest.importorskip("httpx")
    from pipeline.service.app import create_app
    from tests.service.test_service import settings_for

    ws, bundle, _ = built
    settings = settings_for(ws, **{"serve.batch_window_ms": 20.0, "serve.query_cache": 0})
    app = create_app(bundle, settings)  # the serving encoder: onnx (when installed), batched
    emb = app.state.service.holder.current.bundle.embedder
    qs = [q for _, q, _ in app.state.service.holder.current.bundle.faq_questions()][:12]
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        seq = [c.post("/v1/search", json={"query": q, "k": 5}).json()["results"] for q in qs]
        with ThreadPoolExecutor(len(qs)) as pool:
            conc = list(
                pool.map(
                    lambda q: httpx.post(f"{srv.url}/v1/search", json={"query": q, "k": 5}, timeout=60).json()[
                        "results"
                    ],
                    qs,
                )
            )
    assert [[h["atom_id"] for h in r] for r in conc] == [[h["atom_id"] for h in r] for r in seq]
    assert all(
        abs(a["score"] - b["score"]) < 1e-9
        for r1, r2 in zip(conc, seq, strict=False)
        for a, b in zip(r1, r2, strict=False)
    )
    assert "kb-encoder-batch" in {t.name for t in threading.enumerate()} or emb.backend


def test_query_cache_hits_repeats(onnx_float):
    from pipeline.backends.embed.fast import CachedEmbedder

    cache = CachedEmbedder(onnx_float, size=2)
    a = cache.encode(["one"])
    cache.encode(["one"])
    cache.encode(["two"])
    cache.encode(["three"])  # evicts "one"
    cache.encode(["one"])
    assert (cache.hits, cache.misses) == (1, 4)
    assert np.array_equal(cache.encode(["one"]), a)


def test_kb_embed_onnx_writes_a_torch_free_model_folder(kb, tmp_path, onnx_float):
    from pipeline.backends.embed import resolve_model
    from pipeline.backends.embed.onnx import OnnxEmbedder

    out = tmp_path / "model"
    result = kb("embed", "onnx", "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (out / "model.onnx").is_file() and (out / "tokenizer.json").is_file() and (out / "kb-model.json").is_file()
    ref = resolve_model(str(out))
    assert ref.model_id == "all-MiniLM-L6-v2"  # bundles made with the model serve with the folder
    e = OnnxEmbedder(ref)
    assert e.onnx_path == out / "model.onnx"
    assert np.allclose(e.encode(["rootless podman"]), onnx_float.encode(["rootless podman"]), atol=1e-6)
