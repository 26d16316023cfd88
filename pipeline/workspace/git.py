"""git: the reviewers' audit log (plain ``git`` commands; a workspace need not be a repository)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline.errors import KbError


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
