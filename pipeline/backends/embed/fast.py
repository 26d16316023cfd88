"""Serving-side query encoding: an LRU cache of query vectors, micro-batching, int8 onnx.

- ``CachedEmbedder``: the last ``size`` query vectors by text (repeated questions skip the model).
- ``BatchingEmbedder``: concurrent single-query calls that arrive within ``window_ms`` of each
  other go through the model as one batch (one encoder call instead of one per request), so
  throughput under load is not one request at a time; each caller gets its own row back.
- ``quantise_onnx``: an int8 (dynamic, per-channel weights) copy of the float onnx model, made
  once beside it with a sha256 sidecar; ``check_quantised`` refuses it when its vectors fall
  below a cosine of 0.99 to the float model's.

All wrappers keep ``model_id``/``dim``/``max_tokens``, so a bundle checks them like the model.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from pipeline.backends.embed import Embedder
from pipeline.errors import MissingDependencyError, MissingModelError


class _Wrapper(Embedder):
    def __init__(self, inner: Embedder) -> None:
        super().__init__()
        self.inner = inner
        self.model_id, self.dim, self.max_tokens = inner.model_id, inner.dim, inner.max_tokens
        self.backend = inner.backend

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


class CachedEmbedder(_Wrapper):
    """An LRU cache of query vectors in front of ``inner`` (thread-safe); ``hits``/``misses`` count."""

    def __init__(self, inner: Embedder, size: int = 1024) -> None:
        super().__init__(inner)
        self.size = size
        self.hits = 0
        self.misses = 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        out: list[np.ndarray | None] = []
        todo: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                v = self._cache.get(t)
                if v is not None:
                    self._cache.move_to_end(t)
                    self.hits += 1
                else:
                    self.misses += 1
                    todo.append(i)
                out.append(v)
        if todo:
            fresh = self.inner.encode([texts[i] for i in todo])
            with self._lock:
                for j, i in enumerate(todo):
                    out[i] = fresh[j]
                    self._cache[texts[i]] = fresh[j]
                    self._cache.move_to_end(texts[i])
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([v for v in out if v is not None]).astype(np.float32, copy=False)

    def _encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - encode is overridden
        return self.inner.encode(texts)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class BatchingEmbedder(_Wrapper):
    """Micro-batching: one worker thread drains the queue of waiting queries into one encoder call.

    A lone query waits at most ``window_ms`` for company; ``max_batch`` caps one call. Calls of
    more than one text (exports, evaluation) go straight to ``inner``. ``batches``/``batched``
    count the encoder calls made for single queries and the queries they carried.
    """

    def __init__(self, inner: Embedder, window_ms: float = 2.0, max_batch: int = 32) -> None:
        super().__init__(inner)
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.batches = 0
        self.batched = 0
        self._queue: list[tuple[str, Future]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="kb-encoder-batch", daemon=True)
        self._worker.start()

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if len(texts) != 1 or self._closed:
            return self.inner.encode(texts)
        fut: Future = Future()
        with self._cond:
            self._queue.append((texts[0], fut))
            self._cond.notify()
        return fut.result()[None, :]

    def _encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - encode is overridden
        return self.inner.encode(texts)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                deadline = time.monotonic() + self.window
                while len(self._queue) < self.max_batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                vectors = self.inner.encode([t for t, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the error
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            self.batches += 1
            self.batched += len(batch)
            for (_, fut), v in zip(batch, vectors, strict=True):
                fut.set_result(v)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=5)


# -- int8 onnx ------------------------------------------------------------------------------

MIN_COSINE = 0.99


def quantise_onnx(float_path: Path, target: Path | None = None) -> Path:
    """``model.int8.onnx`` beside ``float_path`` (made once; its sidecar records the sha256 of both)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise MissingDependencyError(
            "onnxruntime", "onnx", "The int8 query encoder (serve.encoder: onnx-int8)"
        ) from None
    from pipeline.workspace import atomic_path, atomic_write_text

    float_path = Path(float_path)
    target = Path(target) if target else float_path.with_name(float_path.stem + ".int8.onnx")
    meta = target.with_suffix(".json")
    source_sha = _sha256(float_path)
    if target.is_file() and meta.is_file():
        recorded = json.loads(meta.read_text(encoding="utf-8"))
        if recorded.get("source_sha256") == source_sha and recorded.get("sha256") == _sha256(target):
            return target
    with atomic_path(target) as tmp:
        quantize_dynamic(str(float_path), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    atomic_write_text(meta, json.dumps({"source_sha256": source_sha, "sha256": _sha256(target)}, indent=2) + "\n")
    return target


def check_quantised(
    float_embedder: Embedder, int8_embedder: Embedder, texts: list[str], min_cosine: float = MIN_COSINE
) -> float:
    """The lowest cosine between the two models' vectors over ``texts``; refused below ``min_cosine``."""
    a = float_embedder.encode(texts)
    b = int8_embedder.encode(texts)
    worst = float(np.min(np.sum(a * b, axis=1))) if len(texts) else 1.0
    if worst < min_cosine:
        raise MissingModelError(
            f"The int8 query encoder's vectors reach a cosine of only {worst:.4f} to the float model's "
            f"(needs >= {min_cosine}); it is not used.",
            "Serve with serve.encoder: onnx (float), or use a model that quantises well.",
        )
    return worst


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- a torch-free model folder (kb embed onnx --out DIR) ----------------------------------------

_MODEL_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json",
                "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")  # fmt: skip
MODEL_ID_FILE = "kb-model.json"


def write_onnx_model(model_dir: Path, model_id: str, out: Path, *, int8: bool = False) -> list[Path]:
    """A self-contained model folder for a torch-free serve image: ``model.onnx`` (exported with
    torch once, here), the tokenizer and pooling config, and ``kb-model.json`` naming the model, so
    ``embed.model: OUT`` with ``embed.backend: onnx`` serves bundles made with ``model_id``."""
    import shutil

    from pipeline.backends.embed.onnx import onnx_model
    from pipeline.workspace import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in _MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out / name)
            written.append(out / name)
    if (model_dir / "1_Pooling").is_dir():
        shutil.copytree(model_dir / "1_Pooling", out / "1_Pooling", dirs_exist_ok=True)
        written.append(out / "1_Pooling")
    source = onnx_model(model_dir, model_id)
    if source.resolve() != (out / "model.onnx").resolve():
        shutil.copyfile(source, out / "model.onnx")
    written.append(out / "model.onnx")
    if int8:
        written.append(quantise_onnx(out / "model.onnx", out / "model.int8.onnx"))
    meta = {"model_id": model_id, "model_sha256": _sha256(out / "model.onnx")}
    atomic_write_text(out / MODEL_ID_FILE, json.dumps(meta, indent=2) + "\n")
    written.append(out / MODEL_ID_FILE)
    return written
