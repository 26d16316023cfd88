"""Content hashes and freshness sidecars: which inputs (and settings) produced a stage output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.workspace.files import atomic_write_text


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(data: Any) -> str:
    return sha256_text(json.dumps(data, sort_keys=True, ensure_ascii=False, default=str))


class Freshness:
    """Sidecars recording which inputs (and settings) produced a stage output.

    ``is_fresh(key, inputs)`` is true when the recorded inputs equal ``inputs``; the stage then
    skips the work and says so. ``record(key, inputs)`` is called after a successful write.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, key: str) -> Path:
        safe = key.replace("/", "__")
        return self.folder / f"{safe}.json"

    def recorded(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def is_fresh(self, key: str, inputs: dict[str, Any]) -> bool:
        return self.recorded(key) == json.loads(json.dumps(inputs, sort_keys=True, default=str))

    def record(self, key: str, inputs: dict[str, Any]) -> None:
        atomic_write_text(self._path(key), json.dumps(inputs, sort_keys=True, indent=1, default=str) + "\n")
