"""What a bundle holds, independent of where it is stored: the tables, their rows, the checksum.

``BundleContent`` is the rows of every table in their fixed order plus the passage vectors; the
DuckDB file (``pipeline.index.bundle``) and the Postgres index (``pipeline.index.postgres``) are
two stores of the same content, named by the same ``checksum``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BundleError
from pipeline.index.lexical import TOKENIZER
from pipeline.models import EmbeddingInfo, Manifest

BUNDLE_SCHEMA_VERSION = 2
TABLES = ("atoms", "faq", "sources", "passages", "segments")

COLUMNS: dict[str, list[tuple[str, str]]] = {
    "atoms": [
        ("id", "VARCHAR"),
        ("type", "VARCHAR"),
        ("status", "VARCHAR"),
        ("title", "VARCHAR"),
        ("summary", "VARCHAR"),
        ("tags", "VARCHAR[]"),
        ("meta", "VARCHAR"),
        ("body", "VARCHAR"),
        ("path", "VARCHAR"),
    ],
    "faq": [("atom_id", "VARCHAR"), ("ord", "INTEGER"), ("question", "VARCHAR"), ("answer", "VARCHAR")],
    "sources": [("atom_id", "VARCHAR"), ("ord", "INTEGER"), ("source", "VARCHAR")],
    "passages": [
        ("id", "INTEGER"),
        ("atom_id", "VARCHAR"),
        ("ord", "INTEGER"),
        ("kind", "VARCHAR"),
        ("heading", "VARCHAR"),
        ("part", "INTEGER"),
        ("text", "VARCHAR"),
        ("search_text", "VARCHAR"),
        ("tokens", "VARCHAR[]"),
    ],
    "segments": [
        ("interview", "VARCHAR"),
        ("id", "INTEGER"),
        ("start_s", "DOUBLE"),
        ("end_s", "DOUBLE"),
        ("speaker", "VARCHAR"),
        ("speaker_name", "VARCHAR"),
        ("role", "VARCHAR"),
        ("text", "VARCHAR"),
    ],
}
ORDER = {
    "atoms": "id",
    "faq": "atom_id, ord",
    "sources": "atom_id, ord",
    "passages": "id",
    "segments": "interview, id",
}


@dataclass
class BundleContent:
    """Rows of every table (in their fixed order) and the passage vectors, as written and read."""

    atoms: list[tuple] = field(default_factory=list)
    faq: list[tuple] = field(default_factory=list)
    sources: list[tuple] = field(default_factory=list)
    passages: list[tuple] = field(default_factory=list)
    segments: list[tuple] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    #: each passage's tokens as compact JSON, when the reader has it (the checksum then skips json.dumps)
    token_json: list[str] | None = field(default=None, repr=False, compare=False)

    def sort(self) -> None:
        self.atoms.sort(key=lambda r: r[0])
        self.faq.sort(key=lambda r: (r[0], r[1]))
        self.sources.sort(key=lambda r: (r[0], r[1]))
        self.segments.sort(key=lambda r: (r[0], r[1]))

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in TABLES}


def checksum(content: BundleContent, embedding: EmbeddingInfo, schema_version: int = BUNDLE_SCHEMA_VERSION) -> str:
    """sha256 over the schema version, the embedding model, every row in order, and the vectors."""
    h = hashlib.sha256()
    head = {"schema": schema_version, "embedding": embedding.model_dump(mode="json"), "tokenizer": TOKENIZER}
    h.update(json.dumps(head, sort_keys=True).encode())
    tj = (
        content.token_json
        if content.token_json is not None and len(content.token_json) == len(content.passages)
        else None
    )
    for name in TABLES:
        h.update(f"\n#{name}\n".encode())
        if name == "passages" and tj is not None:  # the same bytes: the row without tokens, then their JSON
            for row, tokens in zip(content.passages, tj, strict=True):
                start = json.dumps(list(row[:-1]), ensure_ascii=False, separators=(",", ":"))
                h.update(f"{start[:-1]},{tokens}]\n".encode())
            continue
        for row in getattr(content, name):
            h.update(json.dumps(list(row), ensure_ascii=False, separators=(",", ":")).encode())
            h.update(b"\n")
    h.update(b"\n#vectors\n")
    h.update(np.ascontiguousarray(content.vectors, dtype="<f4").tobytes())
    return h.hexdigest()


def check_embedder(manifest: Manifest, embedder: Any, path: Path | str = "bundle") -> None:
    """Refuse an embedder that is not the model (and dimension) the index was embedded with."""
    model = getattr(embedder, "model_id", None)
    dim = getattr(embedder, "dim", None)
    if model != manifest.embedding.model or dim != manifest.embedding.dim:
        raise BundleError(
            f"{path} was embedded with '{manifest.embedding.model}' (dim {manifest.embedding.dim}), "
            f"but the embedder in use is '{model}' (dim {dim}).",
            f"Set embed.model to '{manifest.embedding.model}' (kb.yaml or KB_EMBED_MODEL), or re-export the "
            "bundle with the current embed.model.",
        )


def resolve_embedder(manifest: Manifest, embedder: Any, where: Path | str) -> Any:
    """``embedder``, or the one a factory makes for ``manifest``; checked against the index's model."""
    if not hasattr(embedder, "encode") and callable(embedder):
        embedder = embedder(manifest)
    check_embedder(manifest, embedder, where)
    return embedder
