"""The sentence-transformers cross-encoder reranker (torch), loaded from a local model directory only."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.backends.rerank.base import Reranker
from pipeline.errors import MissingDependencyError, MissingModelError

FIX = (
    "On a machine with network, save a relevance cross-encoder (one output, e.g. "
    "cross-encoder/ms-marco-MiniLM-L-6-v2: CrossEncoder(name).save(dir)), copy the directory here and set "
    "serve.reranker to it; or unset serve.reranker to answer with the offline signals alone."
)


class CrossEncoderReranker(Reranker):
    """A ``sentence_transformers.CrossEncoder`` with one relevance output; loaded when constructed, so a
    wrong path or model fails when ``kb serve`` starts, not at the first question."""

    backend = "cross-encoder"

    def __init__(self, location: str, *, threads: int = 1, batch_size: int = 32, max_length: int = 512):
        super().__init__()
        for package in ("torch", "sentence_transformers"):
            if importlib.util.find_spec(package) is None:
                raise MissingDependencyError(package.replace("_", "-"), "embed", "Reranking (serve.reranker)")
        folder = Path(location).expanduser()
        if not (folder / "config.json").is_file():
            raise MissingModelError(
                f"serve.reranker is '{location}', which is not a model directory (no config.json there).", FIX
            )
        import torch
        from sentence_transformers import CrossEncoder

        from pipeline.backends.embed.st import quiet_transformers

        torch.set_num_threads(threads)
        quiet_transformers()
        try:
            self._model: Any = CrossEncoder(str(folder), device="cpu", local_files_only=True, max_length=max_length)
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MissingModelError(
                f"The reranker in '{location}' (serve.reranker) did not load: {first}", FIX
            ) from None
        labels = int(getattr(self._model.model.config, "num_labels", 1) or 1)
        if labels != 1:
            raise MissingModelError(
                f"The model in '{location}' (serve.reranker) has {labels} outputs (a classifier, e.g. NLI); "
                "a reranker has one relevance output.",
                FIX,
            )
        self.model_id = folder.name
        self.batch_size = batch_size
        # a probability whatever activation the model's config names (some rerankers ship raw logits)
        self._sigmoid = torch.nn.Sigmoid()
        # a fast tokenizer sets its truncation per call and refuses a second thread meanwhile
        # ("Already borrowed"); the model is CPU-bound on settings.threads anyway
        self._predict_lock = threading.Lock()

    def _score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        # longest first, so each batch pads to pairs of about its own length (calibration mixes them)
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        with self._predict_lock:
            scores = self._model.predict(
                [pairs[i] for i in order],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                activation_fn=self._sigmoid,
            )
        out = np.empty(len(pairs))
        out[order] = np.asarray(scores, dtype=np.float64).reshape(-1)
        return out
