"""``kb transcribe``: interviews/<id>/ source -> transcript.json + transcript.md, per interview.

A registered transcript is imported; a recording goes through the speech pipeline (ASR and
diarisation, loaded once per batch and only when some interview needs it). Raw speaker labels
are then mapped to the people of interview.yaml. Reviewers' corrections in transcript.md are
merged into transcript.json first, and kept across re-imports. Fresh outputs (same source
hash, settings, people and importer) are skipped and the skip is said; ``force`` redoes them.
Nothing is written for an interview until its new transcript is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConflictError, InputError, KbError, NotFoundError
from pipeline.models import Interview, MediaRef, Transcript
from pipeline.reporting import Reporter
from pipeline.transcripts import audio, corrections, importers, markdown, speakers, store, vtt
from pipeline.transcripts import interview as interview_file
from pipeline.workspace import (
    Workspace,
    atomic_write_json,
    atomic_write_text,
    clean_leftovers,
    sha256_file,
    sha256_json,
)

STAGE = "transcribe"


@dataclass
class TranscribeReport:
    transcribed: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    merged: dict[str, int] = field(default_factory=dict)
    unmapped: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # interview -> why (``keep_going``: kb run goes on)

    def __str__(self) -> str:
        parts = [f"{len(self.transcribed)} transcribed", f"{len(self.fresh)} fresh"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({', '.join(sorted(self.failed))})")
        if self.merged:
            parts.append(f"{sum(self.merged.values())} correction(s) merged from transcript.md")
        if self.unmapped:
            parts.append(f"unmapped speakers in {', '.join(sorted(self.unmapped))}")
        return ", ".join(parts)


class _Speech:
    """The speech pipeline, created on first use and reused for every recording of the batch.

    ASR's output goes through its intermediate file (``asrcache``): ``reuse`` says when a stored
    one is taken instead of running ASR again (True: any; False: never, ``--force``; a run id: only
    one that run wrote, so a forced Celery run's redelivered task finds its own output).
    """

    def __init__(self, settings: Settings, reporter: Reporter, workspace: Workspace, reuse: bool | str = True):
        self.settings = settings
        self.reporter = reporter
        self.workspace = workspace
        self.reuse = reuse
        self.pipeline: Any = None

    def _pipeline(self) -> Any:
        if self.pipeline is None:
            try:
                from pipeline.stages.transcribe.speech import SpeechPipeline
            except ModuleNotFoundError as exc:
                if exc.name != "pipeline.stages.transcribe.speech":
                    raise
                raise KbError(
                    "Speech recognition is not available in this installation of kb.",
                    "Import the transcript your meeting tool wrote instead (kb add meeting.vtt), "
                    "or install kb with its 'asr' extra.",
                ) from None
            self.pipeline = SpeechPipeline(self.settings, self.reporter)
        return self.pipeline

    def recognise(self, path: Path, iv: Interview, sha: str, interview_id: str, audio: Any = None) -> tuple[Any, bool]:
        """(ASR result, whether it came from its intermediate file); a new result is written there."""
        from pipeline.backends import audio as audio_io
        from pipeline.stages.transcribe import asrcache

        target = asrcache.path(self.workspace, interview_id, self.settings, iv, sha)
        if self.reuse is not False:
            found = asrcache.read(target, run=self.reuse if isinstance(self.reuse, str) else None)
            if found is not None:
                self.reporter.info(f"{interview_id}: ASR output found ({self.workspace.relative(target)})")
                return found, True
        pipeline = self._pipeline()
        result = pipeline.recognise(iv, audio if audio is not None else audio_io.load(path))
        asrcache.write(target, result, run=self.reuse if isinstance(self.reuse, str) else None)
        return result, False

    def transcribe(self, path: Path, iv: Interview, sha: str, interview_id: str) -> Transcript:
        """ASR (or its stored output), then diarisation and word-speaker assignment."""
        from pipeline.backends import audio as audio_io

        pipeline = self._pipeline()
        audio_data = audio_io.load(path)
        result, _ = self.recognise(path, iv, sha, interview_id, audio_data)
        return pipeline.diarise(path, iv, result, audio_data)

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None


def choose_media(interview: Interview, iv_path: Path) -> MediaRef:
    """The transcript registered last, else the recording registered last."""
    for kind in ("transcript", "recording"):
        refs = [m for m in interview.media if m.kind == kind]
        if refs:
            return refs[-1]
    raise InputError(
        "no recording or transcript is registered (media: is empty)",
        "Register one under 'media:' (kind, file, sha256, bytes), or create the interview with 'kb add FILE'.",
        path=iv_path,
    )


def _load_transcript(path: Path) -> Transcript | None:
    if not path.is_file():
        return None
    return store.read(path)


def _describe(c: Any) -> str:
    what = f"speaker {c.before!r} -> {c.after!r}" if c.field == "speaker" else "text"
    return f"segment {c.segment} [{markdown.stamp(c.start)}] {what}"


def _inputs(settings: Settings, iv: Interview, sha: str, fmt: str) -> dict[str, Any]:
    """What a transcript depends on: the source, its importer, the people, and the ASR settings for audio."""
    is_audio = fmt == "audio"
    return {
        "source": sha,
        "format": fmt,
        "importer": importers.IMPORTER_VERSION,
        "people": sha256_json([iv.model_dump(mode="json")[k] for k in ("people", "speaker_map", "title")]),
        "settings": sha256_json(
            {
                "asr": settings.asr.model_dump(mode="json"),
                "diarise": settings.diarise.model_dump(mode="json"),
                "language": iv.language,
                "vocabulary": iv.vocabulary,
            }
        )
        if is_audio
        else None,
    }


def _build(
    reporter: Reporter,
    interview_id: str,
    speech: _Speech,
    iv: Interview,
    iv_path: Path,
    media: MediaRef,
    src: Path,
    sha: str,
    is_audio: bool,
    old: Transcript | None,
    limits: Any = None,
) -> tuple[Transcript, list[str]]:
    """A new transcript from the source (ASR or an importer), speakers mapped and earlier corrections
    re-applied: (transcript, unmapped speaker labels)."""
    if is_audio:
        audio.check(src)
        raw = speech.transcribe(src, iv, sha, interview_id)
        raw = raw.model_copy(
            update={
                "interview": interview_id,
                "source": raw.source.model_copy(update={"file": media.file, "sha256": sha}),
            }
        )
        notes: list[str] = []
    else:
        imported = importers.import_file(src, interview_id, sha256=sha, file_label=media.file, limits=limits)
        raw, notes = imported.transcript, imported.notes
        if iv.language and raw.source.language is None:
            raw.source.language = iv.language
    for note in notes:
        reporter.warn(f"{interview_id}: {note}")
    mapped, sreport = speakers.map_speakers(raw, iv, path=iv_path)
    reporter.info(f"{interview_id}: {sreport}")
    for w in sreport.warnings:
        reporter.warn(f"{interview_id}: {w}")
    previous = old.corrections if old is not None else []
    new, applied, skipped = corrections.apply(mapped, previous, iv)
    new.corrections = applied + skipped
    if applied:
        reporter.info(f"{interview_id}: re-applied {len(applied)} earlier correction(s)")
    for c in skipped:
        reporter.warn(
            f"{interview_id}: earlier correction no longer matches the new transcript, kept unapplied: {_describe(c)}"
        )
    return new, sreport.unmapped


def _merge_md(
    workspace: Workspace,
    reporter: Reporter,
    interview_id: str,
    new: Transcript,
    found: list[corrections.Found],
    iv: Interview,
    md_path: Path,
) -> Transcript:
    """Apply the corrections a reviewer made in transcript.md; any that no longer fit is a ConflictError."""
    new, applied, skipped = corrections.apply(
        new, [f.correction for f in found], iv, md_path=md_path, lines=[f.line for f in found]
    )
    if skipped:
        raise ConflictError(
            f"{workspace.relative(md_path)}: {len(skipped)} correction(s) no longer fit the new transcript "
            f"(first: {_describe(skipped[0])}); nothing was written.",
            "Move transcript.md aside, run 'kb transcribe' again, and re-apply your corrections to the new file.",
        )
    new.corrections = [*new.corrections, *applied]
    for c in applied:
        reporter.info(f"{interview_id}: merged from transcript.md: {_describe(c)}")

    return new


def _source(settings: Settings, workspace: Workspace, interview_id: str) -> tuple[Interview, MediaRef, Path]:
    """The interview, its chosen media entry and the file it points to (NotFoundError when missing)."""
    folder = workspace.interview_dir(interview_id)
    iv_path = workspace.interview_yaml(interview_id)
    iv = interview_file.load(iv_path)
    media = choose_media(iv, iv_path)
    src = Path(media.file) if Path(media.file).is_absolute() else folder / media.file
    if src.is_file() or src.is_symlink():
        src = interview_file.media_path(workspace, iv_path, media, settings.allowed_roots)
    if not src.is_file():
        raise NotFoundError(
            f"{workspace.relative(iv_path)}: registered {media.kind} '{media.file}' is missing.",
            "Put the file back, or fix 'media:' in interview.yaml.",
        )
    return iv, media, src


def inputs_hash(settings: Settings, workspace: Workspace, interview_id: str) -> str:
    """The hash of what a transcript depends on (the freshness record's inputs): names its worker task."""
    iv, _media, src = _source(settings, workspace, interview_id)
    return sha256_json(_inputs(settings, iv, sha256_file(src), importers.detect_format(src)))


def source_kind(settings: Settings, workspace: Workspace, interview_id: str) -> str:
    """``audio`` when the interview's chosen source is a recording (ASR and diarisation), else ``import``."""
    _iv, _media, src = _source(settings, workspace, interview_id)
    return "audio" if importers.detect_format(src) == "audio" else "import"


def recognise_one(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    interview_id: str,
    *,
    force: bool = False,
    run_id: str | None = None,
) -> tuple[str, str]:
    """The first half of transcribing, on its own (a worker's ``asr`` task): (kind, outcome).

    A recording: its ASR output into the intermediate file (outcome ``recognised``, ``cached`` when
    it is there already, ``fresh`` when the transcript itself is fresh); diarisation is left to
    ``run`` with the stored output. An imported transcript has no second half: it is imported here
    (outcome ``transcribed`` or ``fresh``, as ``transcribe_one`` says).
    """
    iv, _media, src = _source(settings, workspace, interview_id)
    if importers.detect_format(src) != "audio":
        speech = _Speech(settings, reporter, workspace)
        return "import", transcribe_one(settings, workspace, reporter, interview_id, speech, force=force)[0]
    sha = sha256_file(src)
    inputs = _inputs(settings, iv, sha, "audio")
    json_path = workspace.transcript_json(interview_id)
    if not force and json_path.is_file() and workspace.freshness(STAGE).is_fresh(interview_id, inputs):
        reporter.skip(f"{interview_id}: transcript is fresh")
        return "audio", "fresh"
    audio.check(src)
    speech = _Speech(settings, reporter, workspace, (run_id or False) if force else True)
    try:
        _result, cached = speech.recognise(src, iv, sha, interview_id)
    finally:
        speech.close()
    return "audio", "cached" if cached else "recognised"


def transcribe_one(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    interview_id: str,
    speech: _Speech,
    *,
    force: bool = False,
) -> tuple[str, int, list[str]]:
    """Returns (outcome 'transcribed'|'fresh', corrections merged, unmapped speaker labels)."""
    iv_path = workspace.interview_yaml(interview_id)
    iv, media, src = _source(settings, workspace, interview_id)
    clean_leftovers(workspace, reporter)
    sha = sha256_file(src)
    if sha != media.sha256:
        reporter.warn(f"{interview_id}: {media.file} changed since it was registered (sha256 differs).")
    fmt = importers.detect_format(src)
    is_audio = fmt == "audio"
    inputs = _inputs(settings, iv, sha, fmt)
    json_path, md_path = workspace.transcript_json(interview_id), workspace.transcript_md(interview_id)
    freshness = workspace.freshness(STAGE)
    old = _load_transcript(json_path)
    md_text = vtt.read_text(md_path) if md_path.is_file() else None  # an InputError with the line if not UTF-8

    found: list[corrections.Found] = []
    if md_text is not None and old is not None:
        found, warns = corrections.find(md_text, md_path, old)
        for w in warns:
            reporter.warn(w)
    fresh = not force and old is not None and freshness.is_fresh(interview_id, inputs)
    if fresh and old is not None and not found and md_text is not None and md_text == markdown.render(old, iv.title):
        reporter.skip(f"{interview_id}: transcript is fresh")
        return "fresh", 0, []

    unmapped: list[str] = []
    if fresh:
        assert old is not None
        new = old
    else:
        new, unmapped = _build(
            reporter, interview_id, speech, iv, iv_path, media, src, sha, is_audio, old, settings.limits
        )
        if md_text is not None and old is None:
            found, warns = corrections.find(md_text, md_path, new)
            for w in warns:
                reporter.warn(w)

    if found:
        new = _merge_md(workspace, reporter, interview_id, new, found, iv, md_path)

    atomic_write_json(json_path, new.model_dump(mode="json", exclude_none=True))
    atomic_write_text(md_path, markdown.render(new, iv.title))
    freshness.record(interview_id, inputs)
    return "transcribed", len(found), unmapped


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    ids: list[str] | None = None,
    *,
    force: bool = False,
    keep_going: bool = False,
    reuse_asr: bool | str | None = None,
) -> TranscribeReport:
    """Transcribe ``ids`` (default: all). A failing interview never holds back the others; with
    ``keep_going`` the failures are in the report (``failed``) instead of raised at the end.
    ``reuse_asr`` (default: unless ``force``) takes stored ASR output (see ``_Speech``)."""
    known = workspace.interview_ids()
    if ids:
        for i in ids:
            if i not in known:
                raise NotFoundError(
                    f"No interview '{i}' in {workspace.relative(workspace.interviews_dir)}/.",
                    ("Interviews: " + ", ".join(known))
                    if known
                    else "Create one with 'kb add RECORDING_OR_TRANSCRIPT'.",
                )
    todo = ids or known
    report = TranscribeReport()
    speech = _Speech(settings, reporter, workspace, (not force) if reuse_asr is None else reuse_asr)
    failed: list[tuple[str, KbError]] = []
    try:
        for interview_id in reporter.progress(todo, "Transcribing", total=len(todo)):
            try:
                outcome, merged, unmapped = transcribe_one(
                    settings, workspace, reporter, interview_id, speech, force=force
                )
            except KbError as exc:  # one bad interview must not hold back the others
                failed.append((interview_id, exc))
                continue
            (report.fresh if outcome == "fresh" else report.transcribed).append(interview_id)
            if merged:
                report.merged[interview_id] = merged
            if unmapped:
                report.unmapped[interview_id] = unmapped
    finally:
        speech.close()
    if keep_going:
        for iid, err in failed:
            report.failed[iid] = err.message + (f" ({err.hint})" if err.hint else "")
            reporter.warn(f"transcribe {iid} failed: {err.message}")
        return report
    if len(failed) == 1 and len(todo) == 1:
        raise failed[0][1]
    if failed:
        lines = "\n".join(f"  {iid}: {exc.message}" for iid, exc in failed)
        raise KbError(
            f"{len(failed)} of {len(todo)} interview(s) failed, nothing was written for them "
            f"(the others: {report}):\n{lines}",
            failed[0][1].hint,
        )
    return report


def run_all(settings: Settings, workspace: Workspace, reporter: Reporter, force: bool = False) -> TranscribeReport:
    """The `kb run` step: every interview of the workspace; failures are reported, the run goes on."""
    return run(settings, workspace, reporter, None, force=force, keep_going=True)
