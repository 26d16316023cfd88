"""The embedding cache: a DuckDB file of vectors keyed by sha256(model id + text).

``kb export`` embeds only passages whose key is not in the cache, so a re-export after editing
one atom embeds that atom's changed passages and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from pipeline.errors import ConflictError
from pipeline.index import duck
from pipeline.index.bundle import vectors_table
from pipeline.workspace import disk_full_error, disk_guard, temp_dir


def cache_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Vectors of one model (``dim`` floats each), stored at ``path``. Use as a context manager.

    The cache only holds what can be computed again, so a file that DuckDB cannot open (a crash
    or a full disk during its first write) is deleted and rebuilt; ``rebuilt`` says why. Only a
    lock held by another process is a ConflictError.
    """

    def __init__(self, path: Path, dim: int):
        self.path = Path(path)
        self.dim = dim
        self.rebuilt: str | None = None
        with disk_guard(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._con = self._open()
            except ConflictError:
                raise
            except Exception as exc:  # duckdb.Error of a corrupt or partial file
                if disk_full_error(exc, self.path) is not None:
                    raise
                self.rebuilt = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                for stale in (self.path, self.path.with_name(self.path.name + ".wal")):
                    stale.unlink(missing_ok=True)
                self._con = self._open()

    def _open(self):
        con = duck.connect(
            self.path,
            in_use=f"The embedding cache {self.path} is in use",
            hint="Another 'kb export' is running in this workspace: wait for it to finish, then export again.",
        )
        try:
            con.execute("SET threads=1")
            con.execute(f"CREATE TABLE IF NOT EXISTS vectors (key VARCHAR PRIMARY KEY, e FLOAT[{self.dim}])")
            con.execute("SELECT count(*) FROM vectors").fetchone()
        except BaseException:
            con.close()
            raise
        return con

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        if not keys:
            return {}
        with temp_dir(self.path.parent) as tmp, disk_guard(self.path):
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
        with temp_dir(self.path.parent) as tmp, disk_guard(self.path):
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
