"""The query encoder and dense index the service uses (``serve.encoder``, ``serve.dense``, ...).

``serving_embedder(manifest, settings)`` is the ``Bundle.load`` factory of ``kb serve``: the onnx
embedder by default when onnxruntime is installed (no torch at serve time; same vectors as
sentence-transformers), optionally its int8 copy (made once, checked: cosine >= 0.99 to the float
model here, recall@5 on the bundle's eval questions not lower in ``check_int8_recall``), behind an
LRU cache of query vectors and a micro-batcher (``serve.batch_window_ms``). ``load_serving_bundle``
loads a bundle with both, so ``create_app`` stays a thin caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.backends.embed import Embedder, load_embedder, resolve_model
from pipeline.backends.embed.loader import encoder_kind, manifest_model, onnx_embedder
from pipeline.config import Settings
from pipeline.errors import MissingModelError

PROBES = [
    "Why does the sync fail with context deadline exceeded?",
    "How do I run rootless containers?",
    "port already bound after deleting a VM",
    "What does this error mean and how do I fix it?",
    "Configure the repository server memory limit",
    "certificate signed by unknown authority",
    "The application is out of sync but the diff is empty",
    "permission denied when mounting a volume",
]


def base_embedder(manifest: Any, settings: Settings, kind: str | None = None) -> Embedder:
    """The bare encoder (no cache, no batching) of ``kind`` for the bundle's model."""
    kind = kind or encoder_kind(settings)
    if kind == "sentence-transformers":
        return load_embedder(
            settings.model_copy(update={"embed": settings.embed.model_copy(update={"backend": kind})}),
            manifest_model(manifest, settings),
        )
    from pipeline.backends.embed.onnx import OnnxEmbedder

    chunk = settings.serve.encoder_chunk  # query-sized runs: small batches stay in cache
    float_emb = onnx_embedder(manifest, settings, chunk)
    ref = resolve_model(manifest_model(manifest, settings))
    if kind != "onnx-int8":
        return float_emb
    from pipeline.backends.embed.fast import check_quantised, quantise_onnx

    int8_path = quantise_onnx(float_emb.onnx_path, _int8_target(float_emb.onnx_path))
    int8 = OnnxEmbedder(ref, threads=settings.threads, batch_size=chunk, onnx_path=int8_path)
    int8.cosine_to_float = check_quantised(float_emb, int8, PROBES)  # type: ignore[attr-defined]  # the int8 check result rides on the embedder for /healthz
    int8.float_embedder = float_emb  # type: ignore[attr-defined]  # kept for re-scoring; the embedder class has no such field
    return int8


def _int8_target(float_path: Path) -> Path:
    """Beside the float model when that folder is writable, else in kb's cache."""
    from pipeline.backends.embed.base import cache_dir

    target = float_path.with_name(float_path.stem + ".int8.onnx")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = target.parent / ".kb-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
        return target
    except OSError:
        return cache_dir() / "onnx-int8" / f"{float_path.parent.name}.int8.onnx"


def wrap(embedder: Embedder, settings: Settings) -> Embedder:
    """Micro-batching (``serve.batch_window_ms`` > 0) behind an LRU cache (``serve.query_cache`` > 0)."""
    from pipeline.backends.embed.fast import BatchingEmbedder, CachedEmbedder

    out = embedder
    if settings.serve.batch_window_ms > 0:
        out = BatchingEmbedder(out, settings.serve.batch_window_ms, settings.serve.batch_max)
    if settings.serve.query_cache > 0:
        out = CachedEmbedder(out, settings.serve.query_cache)
    return out


def serving_embedder(manifest: Any, settings: Settings) -> Embedder:
    """``Bundle.load`` factory: the configured encoder for the bundle's model, cached and batched."""
    return wrap(base_embedder(manifest, settings), settings)


def ann_params(settings: Settings) -> Any:
    from pipeline.index.ann import AnnParams

    s = settings.serve
    return AnnParams(
        m=s.hnsw_m, ef_construction=s.hnsw_ef_construction, ef_search=s.hnsw_ef_search, min_recall=s.min_recall
    )


def check_int8_recall(bundle: Any, k: int = 5) -> tuple[float, float] | None:
    """recall@k on the bundle's FAQ questions, float vs int8 encoder; refused when int8 is lower."""
    emb = _innermost(bundle.embedder)
    float_emb = getattr(emb, "float_embedder", None)
    if float_emb is None:
        return None
    questions = bundle.faq_questions()
    if not questions:
        return None
    texts = [q for _, q, _ in questions]
    found = []
    for encoder in (float_emb, emb):
        vectors = encoder.encode(texts)
        hits = 0
        for (atom_id, _q, _), v in zip(questions, vectors, strict=True):
            # dense only (no query text): BM25 would hide a worse encoder
            hits += any(h.atom_id == atom_id for h in bundle.search("", k=k, query_vector=v))
        found.append(hits / len(questions))
    if found[1] < found[0]:
        raise MissingModelError(
            f"The int8 query encoder finds recall@{k} {found[1]:.3f} on this bundle's eval questions, below the float "
            f"model's {found[0]:.3f}; it is not used.",
            "Serve with serve.encoder: onnx (float).",
        )
    return found[0], found[1]


def _innermost(embedder: Any) -> Any:
    while hasattr(embedder, "inner"):
        embedder = embedder.inner
    return embedder


def load_serving_bundle(path: Path | str, settings: Settings, embedder: Any | None = None) -> Any:
    """Load ``path`` (a bundle file, or a ``postgresql://`` URL: the Postgres index) with the serving
    encoder (or ``embedder`` when it is the index's model) and, for a file, its dense index."""
    from functools import partial

    from pipeline.index.postgres import PostgresIndex, is_postgres_url

    def usable(embedding: Any) -> bool:
        return (
            embedder is not None
            and getattr(embedder, "model_id", None) == embedding.model
            and getattr(embedder, "dim", None) == embedding.dim
        )

    factory = partial(serving_embedder, settings=settings)
    if is_postgres_url(path):
        schema = settings.index.schema_name
        return PostgresIndex.load(str(path), lambda m: embedder if usable(m.embedding) else factory(m), schema)
    from pipeline.index.bundle import Bundle, read_manifest

    kw = {
        "dense": settings.serve.dense,
        "ann": ann_params(settings),
        "dense_threshold": settings.serve.dense_auto_threshold,
    }
    if embedder is not None and usable(read_manifest(path).embedding):
        return Bundle.load(path, embedder, **kw)
    bundle = Bundle.load(path, factory, **kw)
    check_int8_recall(bundle)
    return bundle


def encoder_stats(embedder: Any) -> dict[str, Any]:
    """What /healthz reports about the query encoder: backend, cache hit rate, batching."""
    out: dict[str, Any] = {"backend": getattr(_innermost(embedder), "backend", None)}
    e = embedder
    while e is not None:
        if hasattr(e, "hit_rate"):
            out.update(cache_hits=e.hits, cache_misses=e.misses, cache_hit_rate=round(e.hit_rate, 4))
        if hasattr(e, "batches"):
            out.update(batches=e.batches, batched_queries=e.batched)
        e = getattr(e, "inner", None)
    return out
