"""Which importer reads a file, and the one entry point: ``import_file(path, interview_id)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models import Transcript, TranscriptSource
from pipeline.transcripts.builder import assemble

#: Bumped when an importer's output changes, so `kb transcribe` re-imports fresh sources.
IMPORTER_VERSION = 1

TRANSCRIPT_FORMATS = {
    ".vtt": "vtt",
    ".webvtt": "vtt",
    ".srt": "srt",
    ".json": "whisper-json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
AUDIO_EXTENSIONS = {
    ".wav", ".mp3", ".m4a", ".flac", ".ogg", ".oga", ".opus", ".aac", ".wma", ".amr",
    ".webm", ".mp4", ".m4v", ".mov", ".mkv", ".avi",
}  # fmt: skip


def detect_format(path: Path) -> str:
    """'vtt', 'srt', 'whisper-json', 'markdown', 'text', or 'audio' (recordings, incl. video)."""
    ext = path.suffix.lower()
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    fmt = TRANSCRIPT_FORMATS.get(ext)
    if fmt == "text" and path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(16).lstrip(b"\xef\xbb\xbf")
        if head.startswith(b"WEBVTT"):
            return "vtt"
    if fmt is None:
        known = ", ".join(sorted({*TRANSCRIPT_FORMATS, *AUDIO_EXTENSIONS}))
        raise InputError(
            f"unknown file type '{ext or path.name}'",
            f"kb reads recordings and transcripts with these extensions: {known}.",
            path=path,
        )
    return fmt


@dataclass
class Imported:
    transcript: Transcript
    notes: list[str] = field(default_factory=list)


def import_file(path: Path, interview_id: str, *, sha256: str | None = None, file_label: str | None = None) -> Imported:
    """Read an existing transcript into the canonical shape (speakers keep their raw labels)."""
    from pipeline.transcripts import subrip, text, vtt, whisper_json

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "audio":
        raise InputError("this is a recording, not a transcript", "Recordings go through ASR.", path=path)
    if not path.is_file():
        raise InputError("file not found", "Register the file again with 'kb add'.", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", "Export the transcript again.", path=path)
    notes: list[str] = []
    timing = "measured"
    language = None
    if fmt == "vtt":
        turns = vtt.read(path)
    elif fmt == "srt":
        turns = subrip.read(path)
    elif fmt == "whisper-json":
        turns, language, fmt = whisper_json.read_doc(path)
    else:
        turns, timing, notes = text.read(path, markdown=fmt == "markdown")
    if not any(t.text.strip() for t in turns):
        raise InputError("the transcript holds no text", "Check the export; it has no spoken text.", path=path)
    source = TranscriptSource(
        kind="import",
        file=file_label or path.name,
        sha256=sha256,
        format=fmt,
        language=language,
        timing=timing,  # type: ignore[arg-type]  # a str; pydantic checks it against the Literal
    )
    return Imported(assemble(interview_id, source, turns), notes)
