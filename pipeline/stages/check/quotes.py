"""Interview quotes for ``kb check``: re-verified against ``interviews/<id>/transcript.json``.

Uses ``pipeline.transcripts.grounding.verify_quote`` (the same check distillation applies), so a
quote a reviewer edited is held to the words, speaker and seconds of the recording.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pipeline import atoms
from pipeline.errors import InputError
from pipeline.models import InterviewSource
from pipeline.transcripts import store as transcript_store
from pipeline.transcripts.grounding import verify_quote


def check_quotes(ctx: Any, raw: atoms.RawAtom, sources: list, add: Any) -> None:
    """quote-unverified for interview sources whose transcript.json exists."""
    for i, src in enumerate(sources):
        if not isinstance(src, dict) or "interview" not in src:
            continue
        try:
            s = InterviewSource.model_validate(src)
        except ValidationError:
            continue  # already reported as a field error
        transcript = _transcript(ctx, s.interview)
        if transcript is None:
            continue
        threshold = ctx.settings.distill.quote_threshold
        result = verify_quote(transcript, s.speaker, s.start, s.end, s.quote, threshold=threshold)
        if not result.ok:
            line = raw.lines.get(("sources", i, "quote")) or atoms.line_of(raw, ("sources", i))
            reason = getattr(result, "reason", None) or (
                f"not found for {s.speaker} at {s.start:g}-{s.end:g}s (score {result.score:.0f})"
            )
            add(
                "quote-unverified",
                line,
                f"sources[{i}]: quote not verified in interviews/{s.interview}/transcript.json: {reason}",
                "Copy the speaker's words, name and times from the transcript (or transcript.md).",
            )


def _transcript(ctx: Any, interview_id: str) -> Any:
    if interview_id in ctx.transcripts:
        return ctx.transcripts[interview_id]
    transcript = None
    path = ctx.workspace.transcript_json(interview_id)
    if path.is_file():
        try:
            transcript = transcript_store.read(path)
        except (OSError, ValueError, InputError):
            ctx.reporter.warn(f"{ctx.workspace.relative(path)} is not a valid transcript; its quotes are not verified")
    ctx.transcripts[interview_id] = transcript
    return transcript
