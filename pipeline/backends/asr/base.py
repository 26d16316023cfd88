"""The ASR plug-in point: one small base class, one method.

Backends turn 16 kHz mono samples into timed segments (with word timings when the backend has
them). They import their heavy library lazily, load their model once in ``__init__`` and are
reused across interviews; ``close()`` frees the model.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.config import Settings
from pipeline.errors import MissingDependencyError, MissingModelError


@dataclass
class AsrWord:
    start: float
    end: float
    text: str  # as the model wrote it: a leading space where the language separates words
    score: float | None = None


@dataclass
class AsrSegment:
    start: float
    end: float
    text: str
    words: list[AsrWord] = field(default_factory=list)


@dataclass
class AsrResult:
    segments: list[AsrSegment]
    language: str | None
    backend: str
    model: str
    duration: float
    word_timings: bool = True
    notes: list[str] = field(default_factory=list)  # said to the user by the speech pipeline


class AsrBackend(ABC):
    """Speech to timed text. Subclasses load their model in ``__init__(settings)``."""

    name: str = "asr"
    model_id: str = ""
    # Set by the caller to show progress: wraps the stream of decoded segments (Reporter.progress).
    progress: Callable[[Iterable], Iterable] | None = None

    @abstractmethod
    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        initial_prompt: str | None,
        hotwords: str | None,
    ) -> AsrResult:
        """Transcribe 16 kHz mono float32 ``audio``."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Free the model (the next backend may need the memory)."""


def import_faster_whisper(purpose: str = "Transcribing recordings"):
    """faster-whisper, imported lazily (both ASR backends build on it), or a MissingDependencyError."""
    try:
        import faster_whisper
    except ImportError:
        raise MissingDependencyError("faster-whisper", "asr", purpose) from None
    return faster_whisper


def resolve_ct2_model(settings: Settings) -> str:
    """A local CTranslate2 Whisper directory for ``asr.model``: the directory itself, or a model
    name found in the local cache (``asr.download_root`` or the HF cache). Never downloads."""
    name = settings.asr.model
    path = Path(name).expanduser()
    if path.is_dir():
        missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (path / f).is_file()]
        if missing:
            raise MissingModelError(
                f"The ASR model directory {path} lacks {', '.join(missing)}.",
                "Point 'asr.model' at a complete CTranslate2 Whisper model (e.g. a download of "
                "Systran/faster-whisper-large-v3: model.bin, config.json, tokenizer.json, vocabulary).",
            )
        return str(path)
    from faster_whisper.utils import download_model  # the caller has checked the import

    try:  # local_files_only: a lookup in the cache, never a download
        return download_model(name, local_files_only=True, cache_dir=settings.asr.download_root)
    except Exception:  # huggingface_hub raises several kinds when offline / not cached
        repo = name if "/" in name else f"Systran/faster-whisper-{name}"
        raise MissingModelError(
            f"The ASR model '{name}' is neither a local directory nor in the local model cache "
            "(kb never downloads at run time).",
            f"Download it once (e.g. 'huggingface-cli download {repo} --local-dir models/{name.split('/')[-1]}') "
            "and set 'asr.model' to that directory in kb.yaml (or KB_ASR_MODEL).",
        ) from None


def decode_options(settings: Settings) -> dict:
    """The decoding options both faster-whisper backends share, from settings."""
    asr = settings.asr
    options: dict = {
        "beam_size": asr.beam_size,
        "condition_on_previous_text": asr.condition_on_previous_text,
    }
    if asr.temperature is not None:
        options["temperature"] = asr.temperature
    if asr.max_new_tokens is not None:
        options["max_new_tokens"] = asr.max_new_tokens
    return options


def clamp(value: float, duration: float) -> float:
    """Seconds as a plain float inside the recording (backends return numpy floats, and random or
    hallucinating models can place timestamps past the end)."""
    return min(round(max(float(value), 0.0), 3), math.floor(duration * 1000) / 1000)
