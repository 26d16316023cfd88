"""Opening a bundle for answering: the one way the CLI, the service, eval and tools load one."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from pipeline.backends.embed import embedder_for_manifest
from pipeline.config import Settings
from pipeline.index.bundle import Bundle, read_manifest


def open_bundle(path: Path, settings: Settings | None = None, embedder: Any | None = None) -> Bundle:
    """Load and validate a bundle, reusing ``embedder`` (already in memory) when it is the bundle's model;
    otherwise the bundle's own model is loaded when first needed."""
    if embedder is not None:
        embedding = read_manifest(path).embedding
        if getattr(embedder, "model_id", None) == embedding.model and getattr(embedder, "dim", None) == embedding.dim:
            return Bundle.load(path, embedder)
    return Bundle.load(path, partial(embedder_for_manifest, settings=settings))
