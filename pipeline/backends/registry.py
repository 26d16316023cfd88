"""The one registry of backends: (kind, name) -> factory, imported only when asked for.

Built-in backends go through it like any other, so a new backend is one module plus one line
here (or a ``register`` call). Entries are ``"module:attribute"`` strings: looking a backend up
imports its module then, so ``kb --help`` never loads torch, faster_whisper or openai.
Each kind's factory takes what its base class documents:

* ``asr``: ``factory(settings) -> AsrBackend`` (``asr.backend``)
* ``diarise``: ``factory(settings) -> Diariser`` (``diarise.backend``; ``auto`` is resolved by the caller)
* ``embed``: ``factory(ref, threads=, batch_size=) -> Embedder`` (``embed.backend``)
* ``llm``: ``factory(settings, budget_usd=) -> LlmClient`` (``llm.provider``)
* ``rerank``: ``factory(location, threads=) -> Reranker`` (``serve.rerank_backend``; off unless ``serve.reranker``)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pipeline.errors import ConfigError

KINDS = ("asr", "diarise", "embed", "llm", "rerank")

_ENTRIES: dict[str, dict[str, str | Callable[..., Any]]] = {
    "asr": {
        "faster-whisper": "pipeline.backends.asr.faster_whisper:FasterWhisperBackend",
        "whisperx": "pipeline.backends.asr.whisperx:WhisperXBackend",
    },
    "diarise": {
        "pyannote": "pipeline.backends.diarise.pyannote:PyannoteDiariser",
        "channels": "pipeline.backends.diarise.channels:ChannelDiariser",
        "none": "pipeline.backends.diarise.base:single_speaker",
    },
    "embed": {
        "sentence-transformers": "pipeline.backends.embed.st:SentenceTransformerEmbedder",
        "onnx": "pipeline.backends.embed.onnx:OnnxEmbedder",
    },
    "llm": {
        "openai": "pipeline.backends.llm.client:LlmClient",
    },
    "rerank": {
        "cross-encoder": "pipeline.backends.rerank.cross_encoder:CrossEncoderReranker",
    },
}

#: What the settings key is called per kind, for error messages.
_SETTING = {
    "asr": "asr.backend",
    "diarise": "diarise.backend",
    "embed": "embed.backend",
    "llm": "llm.provider",
    "rerank": "serve.rerank_backend",
}


def register(kind: str, name: str, factory: str | Callable[..., Any]) -> None:
    """Add (or replace) a backend: ``factory`` is a callable or a ``"module:attribute"`` string."""
    if kind not in _ENTRIES:
        raise ValueError(f"unknown backend kind {kind!r}; kinds: {', '.join(KINDS)}")
    _ENTRIES[kind][name] = factory


def names(kind: str) -> list[str]:
    return list(_ENTRIES[kind])


def factory(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` for ``kind``; an unknown name is a ConfigError listing the known ones."""
    entry = _ENTRIES[kind].get(name)
    if entry is None:
        raise ConfigError(
            f"Unknown {kind} backend '{name}'.",
            f"Set {_SETTING[kind]} to one of: {', '.join(_ENTRIES[kind])}.",
        )
    if callable(entry):
        return entry
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def create(kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """``factory(kind, name)(*args, **kwargs)``."""
    return factory(kind, name)(*args, **kwargs)
