"""The sentence-transformers embedder (torch): any model by name (local cache only) or path."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np

from pipeline.backends.embed.base import Embedder, ModelRef, missing_model, word_piece_counter
from pipeline.errors import MissingDependencyError, MissingModelError

_PLAIN_MODULES = {"Transformer", "Pooling", "Normalize"}


class SentenceTransformerEmbedder(Embedder):
    """Loads the model on first ``encode``: a local model folder states its dimension, window and
    tokenizer, so an export whose passages are all cached never pays for torch."""

    backend = "sentence-transformers"

    def __init__(self, ref: ModelRef, *, threads: int = 1, batch_size: int = 64):
        super().__init__()
        for package in ("torch", "sentence_transformers"):
            if importlib.util.find_spec(package) is None:
                raise MissingDependencyError(package.replace("_", "-"), "embed", "Embedding")
        self.model_id = ref.model_id
        self.batch_size = batch_size
        self._ref = ref
        self._threads = threads
        self._model = None
        self._load_lock = threading.Lock()
        self._count = None
        meta = _folder_meta(Path(ref.location)) if ref.local else None
        if meta is not None:
            self.dim, self.max_tokens = meta
            self._count = word_piece_counter(Path(ref.location) / "tokenizer.json")
        if meta is None or self._count is None:
            self._load()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self):
        with self._load_lock:
            if self._model is not None:
                return self._model
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self._threads)
            quiet_transformers()
            try:
                model = SentenceTransformer(self._ref.location, device="cpu", local_files_only=True)
            except (OSError, ValueError) as exc:
                raise missing_model(self._ref.location, str(exc).splitlines()[0] if str(exc) else "") from None
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = int(get_dim())
            if self.dim and dim != self.dim:
                raise MissingModelError(
                    f"Embedding model '{self._ref.location}' (embed.model) makes {dim}-d vectors, its folder says {self.dim}.",
                    "Check the model folder's 1_Pooling/config.json, or use another model.",
                )
            self.dim = dim
            self.max_tokens = int(model.max_seq_length or 256)
            if self._count is None:
                backend = getattr(getattr(model, "tokenizer", None), "backend_tokenizer", None)
                if backend is not None:
                    self._count = _counter_from(backend)
            self._model = model
            return model

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._model or self._load()
        return model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        if self._count is None:
            return super().count_tokens(text)
        return self._count(text)


def _counter_from(backend):
    import copy

    tok = copy.deepcopy(backend)
    tok.no_truncation()
    tok.no_padding()
    return lambda text: len(tok.encode(text).ids)


def quiet_transformers() -> None:
    """No weight-loading progress bars on stderr (the CLI shows its own progress)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _folder_meta(folder: Path) -> tuple[int, int] | None:
    """(dim, max_tokens) when a sentence-transformers folder states them plainly (Transformer +
    Pooling [+ Normalize]); None means: load the model to find out."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        pooling = next(m for m in modules if str(m["type"]).endswith("Pooling"))
        dim = json.loads((folder / pooling["path"] / "config.json").read_text(encoding="utf-8"))[
            "word_embedding_dimension"
        ]
        max_tokens = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None
    if not set(kinds) <= _PLAIN_MODULES or not isinstance(dim, int) or not isinstance(max_tokens, int):
        return None
    return dim, max_tokens
