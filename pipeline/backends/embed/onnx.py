"""The onnxruntime embedder: the same vectors as sentence-transformers, without torch when serving.

The model's transformer body is exported to ONNX once (needs torch + onnx, i.e. kb[embed] and
kb[onnx]) into ``~/.cache/kb/onnx/<model>-<fingerprint>/model.onnx``; a model directory that
already holds ``model.onnx`` or ``onnx/model.onnx`` is used as is. Encoding is tokenizers +
onnxruntime (``intra_op_num_threads = settings.threads``) + the model's pooling + L2 norm.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from pipeline.backends.embed.base import (
    Embedder,
    ModelRef,
    cache_dir,
    missing_model,
    read_max_tokens,
    word_piece_counter,
)
from pipeline.errors import MissingDependencyError, MissingModelError
from pipeline.workspace import atomic_path

_EXPORT_LOCK = threading.Lock()


class OnnxEmbedder(Embedder):
    backend = "onnx"

    def __init__(self, ref: ModelRef, *, threads: int = 1, batch_size: int = 64):
        super().__init__()
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                exc.name or "onnxruntime", "onnx", "The onnx embedder (embed.backend: onnx)"
            ) from None
        if not ref.local:
            raise missing_model(ref.location, "the onnx backend needs a local model directory")
        model_dir = Path(ref.location)
        if not (model_dir / "tokenizer.json").is_file():
            raise MissingModelError(
                f"Embedding model directory '{model_dir}' (embed.model) has no tokenizer.json.",
                "Use a sentence-transformers model directory with a fast tokenizer, or embed.backend: sentence-transformers.",
            )
        self.model_id = ref.model_id
        self.max_tokens = read_max_tokens(model_dir)
        self.batch_size = batch_size
        self.pooling = _pooling_mode(model_dir)
        self.onnx_path = onnx_model(model_dir, ref.model_id)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.onnx_path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.enable_truncation(self.max_tokens)
        self._tok.enable_padding()
        self._count = word_piece_counter(model_dir / "tokenizer.json")
        self.dim = int(self._encode(["dimension probe"]).shape[1])

    def _encode(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad less
        out = np.empty((len(texts), self.dim or 0), dtype=np.float32) if self.dim else None
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            vecs = self._batch([texts[i] for i in idx])
            if out is None:
                chunks.append((idx, vecs))
            else:
                out[idx] = vecs
        if out is None:
            out = np.empty((len(texts), chunks[0][1].shape[1]), dtype=np.float32)
            for idx, vecs in chunks:
                out[idx] = vecs
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
        hidden = self._session.run(None, feeds)[0]
        if self.pooling == "cls":
            return hidden[:, 0, :]
        m = mask[..., None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)

    def count_tokens(self, text: str) -> int:
        return self._count(text) if self._count else super().count_tokens(text)


def _pooling_mode(model_dir: Path) -> str:
    cfg = model_dir / "1_Pooling" / "config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text(encoding="utf-8"))
        if data.get("pooling_mode_cls_token"):
            return "cls"
        if not data.get("pooling_mode_mean_tokens", True):
            raise MissingModelError(
                f"Model '{model_dir}' uses a pooling mode the onnx embedder does not implement.",
                "Use embed.backend: sentence-transformers for this model.",
            )
    return "mean"


def onnx_model(model_dir: Path, model_id: str) -> Path:
    """The ONNX file for ``model_dir``: shipped with the model, cached, or exported now (once)."""
    for shipped in (model_dir / "model.onnx", model_dir / "onnx" / "model.onnx"):
        if shipped.is_file():
            return shipped
    weights = sorted(p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin"))
    h = hashlib.sha256(str(model_dir.resolve()).encode())
    for w in weights:
        st = w.stat()
        h.update(f"{w.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    target = cache_dir() / "onnx" / f"{model_id}-{h.hexdigest()[:12]}" / "model.onnx"
    with _EXPORT_LOCK:
        if not target.is_file():
            export_onnx(model_dir, target)
    return target


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the transformer body of a sentence-transformers model to ``target`` (atomically)."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "torch", "onnx,embed", "Exporting the embedding model to ONNX (once per model)"
        ) from None

    class Body(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    from pipeline.backends.embed.st import quiet_transformers

    quiet_transformers()
    try:
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise missing_model(str(model_dir), str(exc).splitlines()[0]) from None
    model.eval()
    ids = torch.ones(1, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    import warnings

    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Body(model),
            (ids, ids, torch.zeros_like(ids)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
