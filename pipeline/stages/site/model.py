"""The workspace as the site sees it: atoms, interviews, transcripts and the files it could not read."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import atoms as atom_files
from pipeline.errors import InputError
from pipeline.models import ATOM_TYPES, Atom, Interview, InterviewSource, Transcript
from pipeline.stages.site.markup import norm_title
from pipeline.transcripts import interview as interview_file
from pipeline.transcripts import store as transcript_store
from pipeline.workspace import Workspace

#: Index pages (src_uri -> nav title), in nav order after the home page.
QUEUE_PAGE = "review-queue.md"
COVERAGE_PAGE = "coverage.md"
BY_TYPE_PAGE = "browse/by-type.md"
TAGS_PAGE = "browse/tags.md"
BY_INTERVIEW_PAGE = "browse/by-interview.md"
BY_EXPERT_PAGE = "browse/by-expert.md"
INTERVIEWS_PAGE = "interviews/index.md"
ASSETS = ("assets/kb/kb.css", "assets/kb/kb.js")
#: material's offline plugin adds this shim from unpkg.com; kb ships a copy so nothing is fetched.
SHIM = "assets/kb/iframe-worker-shim.js"

TYPE_LABELS = {t: t.replace("-", " ").capitalize() for t in ATOM_TYPES} | {"faq": "FAQ"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".webm", ".mp4", ".weba"}


@dataclass
class InterviewData:
    id: str
    interview: Interview | None
    transcript: Transcript | None
    recording: Path | None
    path: Path

    @property
    def title(self) -> str:
        return self.interview.title if self.interview else self.id


@dataclass
class Problem:
    """A file the site could not read (shown on the coverage page; fatal in strict builds)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class SiteModel:
    """Atoms and interviews of a workspace, with the lookups the pages need."""

    workspace: Workspace
    atoms: list[Atom] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # atom id -> file text
    rel_paths: dict[str, str] = field(default_factory=dict)  # atom id -> path relative to workspace
    interviews: dict[str, InterviewData] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def load(cls, workspace: Workspace) -> SiteModel:
        model = cls(workspace)
        seen: dict[str, str] = {}
        for path in workspace.atom_files():
            rel = workspace.relative(path)
            try:
                text = atom_files.read_bytes(path)
                atom = atom_files.parse(text, rel)
            except InputError as exc:
                model.problems.append(
                    Problem(rel, exc.line, exc.message.split(": ", 1)[-1] if exc.path else exc.message)
                )
                continue
            if atom.meta.id in seen:
                model.problems.append(
                    Problem(rel, None, f"atom id '{atom.meta.id}' is also used by {seen[atom.meta.id]}")
                )
                continue
            seen[atom.meta.id] = rel
            model.atoms.append(atom)
            model.texts[atom.meta.id] = text
            model.rel_paths[atom.meta.id] = rel
        for iid in workspace.interview_ids():
            model.interviews[iid] = model._load_interview(iid)
        return model

    def _load_interview(self, iid: str) -> InterviewData:
        folder = self.workspace.interview_dir(iid)
        interview: Interview | None = None
        yaml_path = self.workspace.interview_yaml(iid)
        try:
            interview = interview_file.load(yaml_path, check_id=False)
        except InputError as exc:
            self.problems.append(Problem(self.workspace.relative(yaml_path), exc.line, exc.detail))
        transcript: Transcript | None = None
        tpath = self.workspace.transcript_json(iid)
        if tpath.is_file():
            try:
                transcript = transcript_store.read(tpath)
            except InputError as exc:
                self.problems.append(Problem(self.workspace.relative(tpath), None, exc.detail))
        recording = None
        if interview is not None:
            for media in interview.media:
                if media.kind != "recording":
                    continue
                candidate = Path(media.file) if Path(media.file).is_absolute() else folder / media.file
                if candidate.is_file() and candidate.suffix.lower() in AUDIO_SUFFIXES:
                    recording = candidate
                    break
        return InterviewData(iid, interview, transcript, recording, folder)

    # lookups -----------------------------------------------------------------------------
    def by_id(self) -> dict[str, Atom]:
        return {a.meta.id: a for a in self.atoms}

    def resolve_related(self, title: str) -> Atom | None:
        """The atom a ``related`` title names: same title (case and spacing ignored) or same id."""
        if not hasattr(self, "_titles"):
            self._titles = {norm_title(a.meta.title): a for a in self.atoms}
        hit = self._titles.get(norm_title(title))
        if hit is None:
            hit = self.by_id_cached().get(atom_files.slugify(title))
        return hit

    def by_id_cached(self) -> dict[str, Atom]:
        if not hasattr(self, "_by_id"):
            self._by_id = self.by_id()
        return self._by_id

    def citing_atoms(self, interview_id: str) -> list[Atom]:
        """Atoms quoting an interview, sorted by title."""
        if not hasattr(self, "_citing"):
            groups: dict[str, list[Atom]] = defaultdict(list)
            for atom in sorted_atoms(self.atoms):
                for iid in dict.fromkeys(s.interview for s in atom.meta.sources if isinstance(s, InterviewSource)):
                    groups[iid].append(atom)
            self._citing = groups
        return self._citing.get(interview_id, [])

    def speaker_role(self, interview_id: str, name: str) -> str | None:
        data = self.interviews.get(interview_id)
        if data is None:
            return None
        if data.transcript is not None:
            for sp in data.transcript.speakers:
                if sp.name == name and sp.role != "unknown":
                    return sp.role
        if data.interview is not None:
            for person in data.interview.people:
                if person.name == name or name in person.aliases:
                    return person.role
        return None


def sorted_atoms(atoms: Iterable[Atom]) -> list[Atom]:
    return sorted(atoms, key=lambda a: (norm_title(a.meta.title), a.meta.id))


def experts_of(data: InterviewData) -> list[str]:
    names: list[str] = []
    if data.interview is not None:
        names += [p.name for p in data.interview.people if p.role == "expert"]
    if data.transcript is not None:
        names += [s.name for s in data.transcript.speakers if s.role == "expert" and s.name not in names]
    return names


# ---------------------------------------------------------------------------------------------
