"""Embedding backends: sentence-transformers and onnxruntime behind ``Embedder`` (base.py)."""

from pipeline.backends.embed.base import DEFAULT_MODEL, Embedder, ModelRef, normalise, resolve_model
from pipeline.backends.embed.loader import embedder_for_manifest, load_embedder

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "ModelRef",
    "embedder_for_manifest",
    "load_embedder",
    "normalise",
    "resolve_model",
]
