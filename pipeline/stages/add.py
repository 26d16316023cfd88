"""``kb add``: create ``interviews/<id>/interview.yaml`` and register a recording or transcript.

The source is checked before anything is written (a transcript is imported once, a recording
probed), so a bad file never leaves a half-made interview behind. Small files are copied into
the interview folder; large ones (or ``--reference``) are referenced in place with their sha256,
which ``kb transcribe`` uses to notice when the file changes.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.atoms import slugify
from pipeline.config import Settings
from pipeline.errors import ConflictError, InputError
from pipeline.models import Interview, MediaRef, Person, is_valid_id
from pipeline.reporting import Reporter
from pipeline.transcripts import audio, importers
from pipeline.transcripts import interview as interview_file
from pipeline.workspace import (
    INTERVIEW_YAML,
    TRANSCRIPT_JSON,
    TRANSCRIPT_MD,
    Workspace,
    atomic_path,
    sha256_file,
    write_new_text,
)

#: Files above this size are referenced in place instead of copied (recordings of long meetings).
REFERENCE_ABOVE_BYTES = 200 * 1024 * 1024
RESERVED_NAMES = {INTERVIEW_YAML, TRANSCRIPT_JSON, TRANSCRIPT_MD}


@dataclass
class AddReport:
    interview_id: str
    path: Path
    media: MediaRef
    speakers_found: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        how = "copied" if self.media.copied else "referenced in place"
        return f"interview {self.interview_id}: {self.media.kind} {self.media.file} ({how})"


def parse_person(spec: str, role: str) -> Person:
    """'Alice Moreau:SRE lead' -> Person(name, role, title)."""
    name, _, title = spec.partition(":")
    if not name.strip():
        raise InputError(
            f"--{role} {spec!r} has no name",
            f'Write --{role} "Full Name" or --{role} "Full Name:job title".',
        )
    return Person(name=" ".join(name.split()), role=role, title=title.strip() or None)  # type: ignore[arg-type]  # a str; pydantic checks it against the Literal


def check_id(interview_id: str) -> str:
    if is_valid_id(interview_id):
        return interview_id
    suggestion = slugify(interview_id.replace("/", "-").replace("\\", "-").replace("..", "-"))
    raise InputError(
        f"'{interview_id}' is not a valid interview id (lowercase letters, digits and '-' only; "
        "no path separators, dots or spaces)",
        f"Use --id {suggestion}" if suggestion else "Use an id like 2026-03-04-alice.",
    )


def default_id(title: str | None, date: dt.date, source: Path) -> str:
    base = slugify(f"{date.isoformat()} {title}") if title else slugify(source.stem)
    return base[:120].strip("-") or f"interview-{date.isoformat()}"


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    source: Path,
    *,
    interview_id: str | None = None,
    title: str | None = None,
    date: str | None = None,
    language: str = "en",
    experts: list[str] | None = None,
    interviewers: list[str] | None = None,
    topics: list[str] | None = None,
    vocabulary: list[str] | None = None,
    reference: bool = False,
    guide: Path | str | None = None,
) -> AddReport:
    source = Path(source).expanduser()
    day = _checked_source_and_day(source, date)
    iv_id = check_id(interview_id) if interview_id else default_id(title, day, source)
    folder = workspace.interview_dir(iv_id)
    if workspace.interview_yaml(iv_id).exists():
        raise ConflictError(
            f"interview '{iv_id}' already exists ({workspace.relative(folder / 'interview.yaml')}).",
            "Choose another --id, or register the file by hand under 'media:' in that interview.yaml.",
        )

    media, speakers_found = _media(settings, source, iv_id, reference)  # fails here, before anything is written
    guide_text = _guide_text(Path(guide).expanduser(), folder) if guide is not None else None
    people = [parse_person(s, "expert") for s in experts or []]
    people += [parse_person(s, "interviewer") for s in interviewers or []]
    interview = Interview(
        id=iv_id,
        title=title or source.stem.replace("_", " ").replace("-", " ").strip() or iv_id,
        date=day,
        language=language,
        people=people,
        topics=list(topics or []),
        vocabulary=list(vocabulary or []),
        media=[media],
        guide="guide.md" if guide_text is not None else None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    if guide_text is not None and not (folder / "guide.md").is_file():
        write_new_text(folder / "guide.md", guide_text)
    if media.copied:
        with atomic_path(folder / media.file) as tmp:
            shutil.copyfile(source, tmp)
    write_new_text(workspace.interview_yaml(iv_id), interview_file.dump(interview))
    _tell(reporter, iv_id, bool(people), speakers_found)
    return AddReport(iv_id, workspace.interview_yaml(iv_id), media, speakers_found)


def _checked_source_and_day(source: Path, date: str | None) -> dt.date:
    """The interview's day; InputError when the source is not a file or the date is not one."""
    if not source.is_file():
        what = "is a folder, not a file" if source.is_dir() else "file not found"
        raise InputError(what, "Give the path of one recording or transcript (kb add FILE).", path=source)
    try:
        return dt.date.fromisoformat(date) if date else dt.date.today()
    except ValueError:
        raise InputError(f"--date {date!r} is not a date", "Write it as YYYY-MM-DD.") from None


def _media(settings: Settings, source: Path, iv_id: str, reference: bool) -> tuple[MediaRef, list[str]]:
    """The media entry for ``source`` and the speakers a transcript names; a broken source fails here."""
    fmt = importers.detect_format(source)
    size = source.stat().st_size
    speakers_found: list[str] = []
    if fmt == "audio":
        audio.check(source)
        kind = "recording"
    else:
        imported = importers.import_file(source, iv_id, limits=settings.limits)
        speakers_found = [sp.name for sp in imported.transcript.speakers]
        kind = "transcript"
    sha = sha256_file(source)
    copy = not reference and size <= REFERENCE_ABOVE_BYTES
    if copy:
        name = source.name if source.name not in RESERVED_NAMES else f"source-{source.name}"
    else:
        name = str(source.resolve())
    media = MediaRef(kind=kind, file=name, sha256=sha, bytes=size, copied=copy, format=fmt)  # type: ignore[arg-type]  # a str; pydantic checks it against the Literal
    return media, speakers_found


def _tell(reporter: Reporter, iv_id: str, has_people: bool, speakers_found: list[str]) -> None:
    if not has_people:
        reporter.warn(
            f"{iv_id}: no people given; add the interviewer(s) and expert(s) to interview.yaml "
            "(or use --expert/--interviewer): distillation only trusts what experts said."
        )
    if speakers_found:
        reporter.info(f"{iv_id}: speakers in the transcript: {', '.join(speakers_found)}")
    reporter.info(f"{iv_id}: set consent.recorded / consent.publish in interview.yaml once agreed.")


def _guide_text(path: Path, folder: Path) -> str:
    """The question guide the interview was run with (``kb gaps guide`` writes one into the folder)."""
    if not path.is_file():
        raise InputError("guide not found", "Pass the guide file 'kb gaps guide --interview ID' wrote.", path=path)
    if path.resolve() == (folder / "guide.md").resolve():
        return path.read_text(encoding="utf-8")
    if (folder / "guide.md").is_file():
        raise ConflictError(f"{folder / 'guide.md'} already exists", "Pass that guide, or remove it first.")
    return path.read_text(encoding="utf-8")
