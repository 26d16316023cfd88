"""Token counting without downloads.

tiktoken fetches its BPE files from the internet on first use, which must never happen at run
time. So: tiktoken when its encoding file is already in the local cache (``TIKTOKEN_CACHE_DIR``),
else an estimate of four characters per token (OpenAI's rule of thumb for English; within ~10%
on transcripts). The count only sizes windows and budgets; billing uses the server's usage.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

ENCODING = "o200k_base"
_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def _cache_file(name: str) -> Path | None:
    url = _URLS.get(name)
    if url is None:
        return None
    folder = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    base = Path(folder) if folder else Path(tempfile.gettempdir()) / "data-gym-cache"
    return base / hashlib.sha1(url.encode()).hexdigest()


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any | None:
    path = _cache_file(name)
    if path is None or not path.is_file():
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        return tiktoken.get_encoding(name)
    except Exception:  # a corrupt cache file: fall back to the estimate
        return None


def counter_name(name: str = ENCODING) -> str:
    """What counts tokens here: ``tiktoken:<encoding>`` or ``estimate:chars/4``."""
    return f"tiktoken:{name}" if _encoding(name) is not None else "estimate:chars/4"


def count_tokens(text: str, name: str = ENCODING) -> int:
    enc = _encoding(name)
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    return (len(text) + 3) // 4
