"""Loading an embedder: the one ``settings.embed`` names, or the one a bundle was embedded with."""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

from pipeline.backends import registry
from pipeline.backends.embed.base import Embedder, resolve_model
from pipeline.config import Settings
from pipeline.errors import KbError

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.backends.embed.onnx import OnnxEmbedder


def load_embedder(settings: Settings, model: str | None = None) -> Embedder:
    """The embedder ``settings.embed`` names (backend, model, batch size), on ``settings.threads``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ref = resolve_model(model or settings.embed.model)
    embedder: Embedder = registry.create(
        "embed", settings.embed.backend, ref, threads=settings.threads, batch_size=settings.embed.batch_size
    )
    return embedder


def embedder_for_manifest(manifest: Any, settings: Settings | None = None) -> Embedder:
    """The embedder for a bundle's model (a ``Bundle.load`` factory).

    ``embed.model`` wins when it names the bundle's model (e.g. as a local path); otherwise the
    model the manifest names is loaded, so a bundle serves with the model it was embedded with.
    """
    if settings is None:
        settings = Settings.load(None)
    return load_embedder(settings, model=manifest_model(manifest, settings))


def manifest_model(manifest: Any, settings: Settings) -> str:
    """The model to load for a bundle: ``embed.model`` when it names the bundle's model (e.g. as a local
    path), else the model the manifest names."""
    ref = resolve_model(settings.embed.model)
    return settings.embed.model if ref.model_id == manifest.embedding.model else manifest.embedding.model


def onnx_embedder(manifest: Any, settings: Settings, batch_size: int) -> OnnxEmbedder:
    """The onnxruntime encoder of a bundle's model (float; the service may quantise it)."""
    from pipeline.backends.embed.onnx import OnnxEmbedder

    return OnnxEmbedder(
        resolve_model(manifest_model(manifest, settings)), threads=settings.threads, batch_size=batch_size
    )


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def encoder_kind(settings: Settings) -> str:
    """``serve.encoder`` resolved: auto -> onnx when onnxruntime is installed, else ``embed.backend``."""
    kind = settings.serve.encoder
    if kind == "auto":
        return "onnx" if onnx_available() else settings.embed.backend
    return kind


def query_embedder_for_manifest(manifest: Any, settings: Settings | None = None) -> Embedder:
    """The embedder answering encodes questions with (a ``Bundle.load`` factory for kb ask, kb chat,
    kb eval and the tools): the same kind ``kb serve`` uses (``serve.encoder``), so the CLI and the
    service judge a question on the same vector, and ``kb ask`` does not import torch when onnxruntime
    is there (8 s -> under 2 s a question). The int8 copy is the service's alone (checked at its start)."""
    if settings is None:
        settings = Settings.load(None)
    if encoder_kind(settings) == "sentence-transformers":
        return embedder_for_manifest(manifest, settings)
    try:
        return onnx_embedder(manifest, settings, settings.embed.batch_size)
    except KbError:
        if settings.serve.encoder != "auto":
            raise
        # auto: a model only in the Hugging Face cache, or no exporter for a first ONNX file: what worked before
        return embedder_for_manifest(manifest, settings)
