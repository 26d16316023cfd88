"""The embedding cache: a DuckDB file of vectors keyed by sha256(model id + text).

``kb export`` embeds only passages whose key is not in the cache, so a re-export after editing
one atom embeds that atom's changed passages and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from pipeline.index import duck
from pipeline.index.bundle import vectors_table


def cache_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Vectors of one model (``dim`` floats each), stored at ``path``. Use as a context manager."""

    def __init__(self, path: Path, dim: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self._con = duck.connect(
            self.path,
            in_use=f"The embedding cache {self.path} is in use",
            hint="Another 'kb export' is running in this workspace: wait for it to finish, then export again.",
        )
        self._con.execute("SET threads=1")
        self._con.execute(f"CREATE TABLE IF NOT EXISTS vectors (key VARCHAR PRIMARY KEY, e FLOAT[{dim}])")

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        if not keys:
            return {}
        with tempfile.TemporaryDirectory(prefix="kb-cache-") as tmp:
            f = Path(tmp) / "keys.json"
            f.write_text(json.dumps([{"key": k} for k in set(keys)]), encoding="utf-8")
            found = self._con.execute(
                "SELECT v.key, v.e FROM vectors v JOIN read_json(?, columns={'key': 'VARCHAR'}) w ON v.key = w.key",
                [str(f)],
            ).fetchnumpy()
        return {str(k): np.asarray(e, dtype=np.float32) for k, e in zip(found["key"], found["e"], strict=True)}

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        if not keys:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with tempfile.TemporaryDirectory(prefix="kb-cache-") as tmp:
            f = Path(tmp) / "keys.jsonl"
            f.write_text("".join(json.dumps({"i": i, "key": k}) + "\n" for i, k in enumerate(keys)), encoding="utf-8")
            vectors_table(self._con, "new_vectors", vectors)
            self._con.execute(
                "INSERT OR REPLACE INTO vectors SELECT k.key, n.e FROM read_json(?, format='newline_delimited', "
                "columns={'i': 'INTEGER', 'key': 'VARCHAR'}) k JOIN new_vectors n ON k.i = n.id",
                [str(f)],
            )
            self._con.execute("DROP TABLE new_vectors")

    def __len__(self) -> int:
        return int(self._con.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
