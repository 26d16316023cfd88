"""The sentence-transformers embedder (torch): any model by name (local cache only) or path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.backends.embed import Embedder, ModelRef, missing_model, word_piece_counter
from pipeline.errors import MissingDependencyError


class SentenceTransformerEmbedder(Embedder):
    backend = "sentence-transformers"

    def __init__(self, ref: ModelRef, *, threads: int = 1, batch_size: int = 64):
        super().__init__()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(exc.name or "sentence-transformers", "embed", "Embedding") from None
        torch.set_num_threads(threads)
        _quiet_transformers()
        try:
            self._model = SentenceTransformer(ref.location, device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise missing_model(ref.location, str(exc).splitlines()[0] if str(exc) else "") from None
        self.model_id = ref.model_id
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_tokens = int(self._model.max_seq_length or 256)
        self.batch_size = batch_size
        self._count = word_piece_counter(Path(ref.location) / "tokenizer.json") if ref.local else None
        if self._count is None:
            backend = getattr(getattr(self._model, "tokenizer", None), "backend_tokenizer", None)
            if backend is not None:
                self._count = _counter_from(backend)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(
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


def _quiet_transformers() -> None:
    """No weight-loading progress bars on stderr (the CLI shows its own progress)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
