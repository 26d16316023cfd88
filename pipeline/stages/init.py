"""``kb init DIR``: scaffold a new workspace from the templates shipped in the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pipeline.errors import ConflictError, KbError
from pipeline.models import ATOM_TYPES
from pipeline.workspace import atomic_write_text, git_commit, git_identity, git_init, in_git_repo

#: template file (in pipeline/templates/workspace) -> path in the new workspace
FILES = {
    "kb.yaml": "kb.yaml",
    "mkdocs.yml": "mkdocs.yml",
    "gitignore": ".gitignore",
    "pre-commit-config.yaml": ".pre-commit-config.yaml",
    "kb-ci.yml": ".github/workflows/kb.yml",
    "site-index.md": "site/index.md",
}


def run(target: Path, *, name: str | None = None) -> list[Path]:
    """Create the workspace folders and files; refuse when kb.yaml or mkdocs.yml already exist."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConflictError(f"{target} is a file, not a folder.", "Give kb init the folder to create the workspace in.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KbError(
            f"Cannot create the workspace folder {target}: {exc.strerror or exc}.",
            "Pick a folder you can write to (check the path and its permissions).",
        ) from None
    for marker in ("kb.yaml", "mkdocs.yml"):
        if (target / marker).exists():
            raise ConflictError(
                f"{target / marker} already exists: {target} is already a workspace.",
                "Pick an empty folder, or keep working in this one.",
            )
    created: list[Path] = []
    templates = resources.files("pipeline") / "templates" / "workspace"
    title = name or target.resolve().name
    for src, dest in FILES.items():
        path = target / dest
        if path.exists():
            continue
        text = (templates / src).read_text(encoding="utf-8").replace("{{ name }}", title)
        atomic_write_text(path, text)
        created.append(path)
    for folder in ["interviews", *[f"atoms/{t}" for t in ATOM_TYPES]]:
        keep = target / folder / ".gitkeep"
        if not keep.exists():
            atomic_write_text(keep, "")
            created.append(keep)
    return created


def init_git(target: Path, created: list[Path]) -> str:
    """Make the workspace a git repository (git is the reviewers' audit log) unless it is inside one,
    and commit the scaffold when a git identity is configured. Returns what was done, to tell the user."""
    import shutil

    target = Path(target)
    if shutil.which("git") is None:
        return "git is not installed: the workspace is not under version control (install git, then 'git init')."
    if in_git_repo(target):
        return "inside an existing git repository: left it to you to commit the new files."
    git_init(target)
    name, email = git_identity(target)
    if not name or not email:
        return (
            "created a git repository; no git identity is configured, so nothing was committed "
            "(git config --global user.name/user.email, then 'git add -A && git commit')."
        )
    git_commit(target, created, "kb init: workspace scaffold")
    return f"created a git repository and committed the scaffold as {name}."
