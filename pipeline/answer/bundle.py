"""Opening a bundle for answering: the one way the CLI, the service, eval and tools load one."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from pipeline.backends.embed.loader import query_embedder_for_manifest
from pipeline.config import Settings
from pipeline.index.bundle import Bundle, read_manifest


def open_bundle(path: Path | str, settings: Settings | None = None, embedder: Any | None = None) -> Any:
    """Load and validate a bundle (or, for a ``postgresql://`` URL, the Postgres index), reusing
    ``embedder`` (already in memory) when it is the index's model; otherwise the index's own model
    is loaded when first needed."""
    from pipeline.index.postgres import PostgresIndex, is_postgres_url

    factory = partial(query_embedder_for_manifest, settings=settings)
    if is_postgres_url(path):

        def pick(manifest: Any) -> Any:
            same = getattr(embedder, "model_id", None) == manifest.embedding.model
            return embedder if same and getattr(embedder, "dim", None) == manifest.embedding.dim else factory(manifest)

        schema = settings.index.schema_name if settings is not None else "kb"
        return PostgresIndex.load(str(path), pick, schema)
    path = Path(path)
    if embedder is not None:
        embedding = read_manifest(path).embedding
        if getattr(embedder, "model_id", None) == embedding.model and getattr(embedder, "dim", None) == embedding.dim:
            return Bundle.load(path, embedder)
    return Bundle.load(path, factory)
