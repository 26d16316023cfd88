"""Every path of a workspace: the folders and files kb reads and writes, and path confinement."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError, NotFoundError
from pipeline.workspace.hashes import Freshness

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
