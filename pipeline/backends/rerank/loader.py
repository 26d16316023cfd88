"""The configured reranker (``serve.reranker``), loaded once per process and model."""

from __future__ import annotations

import os
import threading

from pipeline.backends import registry
from pipeline.backends.rerank.base import Reranker
from pipeline.config import Settings

_LOADED: dict[tuple[str, str, int], Reranker] = {}
_LOCK = threading.Lock()


def load_reranker(settings: Settings) -> Reranker | None:
    """The reranker ``serve.reranker`` names (None when unset): every answer and calibration in the
    process shares one loaded model per (backend, path, threads)."""
    location = settings.serve.reranker
    if not location:
        return None
    key = (settings.serve.rerank_backend, str(location), settings.threads)
    found = _LOADED.get(key)  # every answer asks: no lock once loaded
    if found is not None:
        return found
    with _LOCK:
        found = _LOADED.get(key)
        if found is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            found = registry.create("rerank", key[0], str(location), threads=settings.threads)
            _LOADED[key] = found
        return found
