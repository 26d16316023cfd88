"""Workspace paths, atomic writes, content hashes and freshness sidecars.

Every stage reads files and writes files. Writes go to a temp file in the same folder and are
renamed into place, so a crash never leaves half a file. Each stage output records the hashes
of its inputs and settings in a sidecar under ``.kb/state/``; an unchanged input is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import KbError, NotFoundError

MARKERS = ("kb.yaml", "mkdocs.yml")


def find_workspace(start: Path | None = None) -> Path:
    """The nearest folder (``start`` or a parent) holding kb.yaml or mkdocs.yml; else ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).is_file() for m in MARKERS):
            return folder
    return here


#: The files of an interview folder (``interviews/<id>/``).
INTERVIEW_YAML = "interview.yaml"
TRANSCRIPT_JSON = "transcript.json"
TRANSCRIPT_MD = "transcript.md"
#: The LLM run log under ``.kb/``.
RUN_LOG = "runs.duckdb"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, root: Path | str | None = None, *, discover: bool = True) -> Workspace:
        if root is None:
            return cls(find_workspace() if discover else Path.cwd().resolve())
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise NotFoundError(
                f"Workspace folder '{root}' does not exist.",
                "Create one with 'kb init DIR', or pass an existing folder to --workspace.",
            )
        return cls(path)

    # folders -----------------------------------------------------------------------------
    @property
    def atoms_dir(self) -> Path:
        return self.root / "atoms"

    @property
    def interviews_dir(self) -> Path:
        return self.root / "interviews"

    @property
    def schemas_dir(self) -> Path:
        return self.root / "schemas"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def dist_dir(self) -> Path:
        return self.root / "dist"

    @property
    def state_dir(self) -> Path:
        return self.root / ".kb"

    @property
    def kb_yaml(self) -> Path:
        return self.root / "kb.yaml"

    @property
    def mkdocs_yml(self) -> Path:
        return self.root / "mkdocs.yml"

    def interview_dir(self, interview_id: str) -> Path:
        return self.interviews_dir / interview_id

    def interview_yaml(self, interview_id: str) -> Path:
        return self.interview_dir(interview_id) / INTERVIEW_YAML

    def transcript_json(self, interview_id: str) -> Path:
        return self.interview_dir(interview_id) / TRANSCRIPT_JSON

    def transcript_md(self, interview_id: str) -> Path:
        return self.interview_dir(interview_id) / TRANSCRIPT_MD

    @property
    def run_log(self) -> Path:
        """The LLM run log (requests, tokens, cost, atoms written): ``.kb/runs.duckdb``."""
        return self.state_dir / RUN_LOG

    @property
    def embedding_cache_dir(self) -> Path:
        return self.state_dir / "embeddings"

    def stage_state_dir(self, stage: str) -> Path:
        """Where a stage keeps its own state (``.kb/state/<stage>``; distill: ``.kb/distill``)."""
        return self.state_dir / stage if stage == "distill" else self.state_dir / "state" / stage

    @property
    def check_report(self) -> Path:
        """The last ``kb check`` report (what ``kb run`` skips with)."""
        return self.stage_state_dir("check") / "check-report.json"

    def atom_path(self, atom_type: str, atom_id: str) -> Path:
        return self.atoms_dir / atom_type / f"{atom_id}.md"

    def atom_files(self) -> list[Path]:
        """All atom files (proposals ``*.proposed.md`` excluded), sorted."""
        if not self.atoms_dir.is_dir():
            return []
        return sorted(p for p in self.atoms_dir.rglob("*.md") if not p.name.endswith(".proposed.md"))

    def interview_ids(self) -> list[str]:
        if not self.interviews_dir.is_dir():
            return []
        return sorted(p.name for p in self.interviews_dir.iterdir() if (p / INTERVIEW_YAML).is_file())

    def relative(self, path: Path) -> str:
        """A path relative to the workspace when inside it (for messages and findings)."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    # freshness ---------------------------------------------------------------------------
    def freshness(self, stage: str) -> Freshness:
        return Freshness(self.stage_state_dir(stage))


# ---------------------------------------------------------------------------------------------
# atomic writes and hashes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_new_text(path: Path, text: str) -> None:
    """Create ``path``; refuse if it exists (never overwrite what a person may own)."""
    from pipeline.errors import ConflictError

    path = Path(path)
    if path.exists():
        raise ConflictError(
            f"{path} already exists; kb does not overwrite it.",
            "Choose another title or id, or delete the file first if you really mean to.",
        )
    atomic_write_text(path, text)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it into place only if the block succeeds.

    For libraries that insist on writing a file themselves (DuckDB, mkdocs).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            if tmp_path.is_dir():
                import shutil

                shutil.rmtree(tmp_path, ignore_errors=True)
            else:
                tmp_path.unlink()


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


__all__ = [
    "KbError",
    "Workspace",
    "Freshness",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_path",
    "write_new_text",
    "find_workspace",
    "sha256_bytes",
    "sha256_text",
    "sha256_file",
    "sha256_json",
]
