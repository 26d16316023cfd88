"""Workspace paths, atomic writes, content hashes and freshness sidecars.

Every stage reads files and writes files. Writes go to a temp file in the same folder and are
renamed into place, so a crash never leaves half a file. Each stage output records the hashes
of its inputs and settings in a sidecar under ``.kb/state/``; an unchanged input is skipped.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import DiskFullError, InputError, KbError, NotFoundError

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
    def plans_dir(self) -> Path:
        """``kb change`` plans (and setup applies): ``plans/<id>/``."""
        return self.root / "plans"

    @property
    def proposals_dir(self) -> Path:
        """``kb setup`` proposals: ``proposals/setup-<id>/``."""
        return self.root / "proposals"

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
    @property
    def rejected_file(self) -> Path:
        """Proposals a reviewer rejected (``kb review reject``): atom id -> content keys never to propose again."""
        return self.state_dir / "review" / "rejected.json"

    def rejected(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.rejected_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return (
            {str(k): [str(x) for x in v] for k, v in data.items() if isinstance(v, list)}
            if isinstance(data, dict)
            else {}
        )

    def freshness(self, stage: str) -> Freshness:
        return Freshness(self.stage_state_dir(stage))


# ---------------------------------------------------------------------------------------------
# atomic writes and hashes


#: Every temp file or folder kb creates starts with this, then the writer's pid: ``.kb-tmp-<pid>-``.
#: The next run removes those whose writer is gone (``clean_leftovers``) and says so.
TEMP_PREFIX = ".kb-tmp-"
_TEMP_RE = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")


def temp_prefix() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-"


def temp_dir(beside: Path) -> tempfile.TemporaryDirectory:
    """A scratch folder in ``beside`` (inside the workspace, never the system temp folder)."""
    beside = Path(beside)
    beside.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=temp_prefix(), dir=beside)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    with disk_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=f".{path.name}.tmp", dir=path.parent)
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

    For libraries that insist on writing a file themselves (DuckDB, mkdocs). The temp name has
    kb's prefix and this pid, so files a library adds beside it (DuckDB's ``.wal``) carry both.
    """
    path = Path(path)
    with disk_guard(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=f".{path.name}.tmp", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.replace(tmp_path, path)
        finally:
            for leftover in (tmp_path, *tmp_path.parent.glob(glob.escape(tmp_path.name) + ".*")):
                _remove(leftover)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------------------------------
# crash leftovers and a full disk


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) writes nothing more
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def leftovers(folders: list[Path], depth: int = 3) -> list[Path]:
    """kb temp files/folders in ``folders`` (``depth`` levels down) whose writer process is gone."""
    found: list[Path] = []
    todo = [(Path(f), 0) for f in folders]
    while todo:
        folder, level = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _TEMP_RE.match(entry.name)
            if m:
                if not _pid_alive(int(m.group(1))):
                    found.append(Path(entry.path))
            elif level < depth and entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".git"):
                todo.append((Path(entry.path), level + 1))
    return sorted(found)


def clean_leftovers(workspace: Workspace, reporter: Any = None) -> list[Path]:
    """Remove temp files of crashed kb runs (writer pid gone) anywhere kb writes; report them.

    A concurrent run's temp files (its pid alive) are left alone.
    """
    root = workspace.root
    folders = [root / "dist", root / "build", workspace.state_dir, workspace.atoms_dir, workspace.interviews_dir]
    found = sorted(leftovers([f for f in folders if f.is_dir()], depth=3) + leftovers([root], depth=0))
    for path in found:
        _remove(path)
    if found and reporter is not None:
        pids = sorted({_TEMP_RE.match(p.name).group(1) for p in found})  # type: ignore[union-attr]
        names = ", ".join(workspace.relative(p) for p in found[:5]) + (" ..." if len(found) > 5 else "")
        reporter.info(
            f"removed {len(found)} leftover temp file(s) of interrupted kb run(s) (pid {', '.join(pids)}): {names}"
        )
    return found


_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded", "disk is full")


def disk_full_error(exc: BaseException, dest: Path) -> DiskFullError | None:
    """A DiskFullError naming ``dest`` and the free space when ``exc`` is a full disk (or ulimit -f)."""
    text = str(exc)
    if not ((isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS) or any(t in text for t in _DISK_FULL_TEXT)):
        return None
    where = Path(dest)
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = f"{shutil.disk_usage(where).free / 1e6:,.1f} MB free on {where}"
    except OSError:
        free = "free space unknown"
    too_large = (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or "File too large" in text
    why = "the file-size limit (ulimit -f) was reached" if too_large else "the disk is full"
    return DiskFullError(
        f"could not write {dest}: {why} ({free}).",
        "Free some space (or raise the limit, or write elsewhere, e.g. --out), then run the command again: "
        "kb removes its partial files itself.",
    )


@contextmanager
def disk_guard(dest: Path) -> Iterator[None]:
    """Turn a full disk (OSError or a library's message) while writing ``dest`` into DiskFullError."""
    try:
        yield
    except DiskFullError:
        raise
    except KbError:
        raise
    except Exception as exc:
        full = disk_full_error(exc, dest)
        if full is None:
            raise
        raise full from None


def confine(
    workspace: Workspace,
    path: Path,
    *,
    allowed_roots: list[str] | tuple[str, ...] = (),
    named_in: str | Path | None = None,
    what: str = "file",
) -> Path:
    """``path`` resolved (symlinks followed); InputError unless inside the workspace or an allowed root.

    Paths read from workspace files (interview.yaml, adapters, kb.yaml) go through here, so a
    file naming ``../../outside/secret.md`` (or a symlink leaving the workspace) is refused.
    """
    resolved = Path(path).resolve()
    roots = [workspace.root] + [(workspace.root / Path(r).expanduser()).resolve() for r in allowed_roots]
    if any(resolved == r or r in resolved.parents for r in roots):
        return resolved
    raise InputError(
        f"{what} '{path}' resolves to {resolved}, outside the workspace {workspace.root}",
        "Move the file into the workspace, or allow its folder in kb.yaml: allowed_roots: ['<folder>'].",
        path=workspace.relative(Path(named_in)) if named_in else None,
    )


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
    "TEMP_PREFIX",
    "temp_dir",
    "clean_leftovers",
    "disk_guard",
    "disk_full_error",
    "confine",
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


# ---------------------------------------------------------------------------------------------
# git: the reviewers' audit log (plain `git` commands; a workspace need not be a repository)


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except FileNotFoundError:
        raise KbError("git is not installed", "Install git (apt-get install git), or leave out --commit.") from None


def in_git_repo(root: Path) -> bool:
    try:
        return _git(root, "rev-parse", "--is-inside-work-tree").stdout.strip() == "true"
    except KbError:
        return False


def git_identity(root: Path) -> tuple[str | None, str | None]:
    """``git config user.name`` and ``user.email`` as git sees them from ``root`` (None when unset)."""
    try:
        name = _git(root, "config", "user.name").stdout.strip() or None
        email = _git(root, "config", "user.email").stdout.strip() or None
    except KbError:
        return None, None
    return name, email


def git_init(root: Path) -> None:
    proc = _git(root, "init", "-q")
    if proc.returncode:
        raise KbError(
            f"git init failed: {proc.stderr.strip()}", "Check that git works here, or run 'git init' yourself."
        )


def git_commit(root: Path, paths: list[Path], message: str, *, author: str | None = None) -> str | None:
    """Commit ``paths`` (added, changed or deleted) with ``message``; ``author`` names who did it. Returns the commit."""
    rels = [str(p.relative_to(root)) if p.is_absolute() else str(p) for p in paths]
    rels = [r for r in dict.fromkeys(rels) if (root / r).exists() or _git(root, "ls-files", "--", r).stdout.strip()]
    if not rels:
        return None  # e.g. a proposal that was never committed, now removed: nothing for git to record
    _git(root, "add", "-A", "--", *rels)
    env: dict[str, str] = {}
    if author:
        _, email = git_identity(root)
        env = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email or ""}
    proc = _git(root, "commit", "-q", "-m", message, "--", *rels, env=env)
    if proc.returncode:
        raise KbError(
            f"git commit failed: {(proc.stderr or proc.stdout).strip()}",
            "Set your identity (git config user.name / user.email) and check the repository, or leave out --commit.",
        )
    return _git(root, "rev-parse", "HEAD").stdout.strip()
