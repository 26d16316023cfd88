"""Interview commands: ``add`` (register a recording or transcript) and ``transcribe``."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state


@app.command()
def add(
    ctx: typer.Context,
    source: Path = typer.Argument(
        ..., help="Recording (wav, mp3, m4a, mp4, ...) or transcript (vtt, srt, json, md, txt)."
    ),
    interview_id: str | None = typer.Option(None, "--id", help="Interview id (default: DATE-TITLE, or the file name)."),
    title: str | None = typer.Option(None, help="Title of the interview."),
    date: str | None = typer.Option(None, help="Date of the interview, YYYY-MM-DD (default: today)."),
    language: str = typer.Option("en", help="Spoken language (ISO code)."),
    expert: list[str] = typer.Option(
        [], "--expert", metavar="NAME[:TITLE]", help="'Name' or 'Name:job title' of an expert (repeatable)."
    ),
    interviewer: list[str] = typer.Option(
        [], "--interviewer", metavar="NAME", help="'Name' of an interviewer (repeatable)."
    ),
    topic: list[str] = typer.Option([], "--topic", metavar="TOPIC", help="A topic of the interview (repeatable)."),
    vocabulary: list[str] = typer.Option(
        [], "--vocab", metavar="TERM", help="A term to hint to speech recognition (repeatable)."
    ),
    reference: bool = typer.Option(
        False, "--reference", help="Reference the file in place (with its sha256) instead of copying it."
    ),
) -> None:
    """Create interviews/<id>/interview.yaml and register a recording or an existing transcript."""
    from pipeline.stages import add as add_stage

    st = state(ctx)
    result = add_stage.run(
        st.settings(),
        st.workspace,
        reporter(ctx),
        source,
        interview_id=interview_id,
        title=title,
        date=date,
        language=language,
        experts=expert,
        interviewers=interviewer,
        topics=topic,
        vocabulary=vocabulary,
        reference=reference,
    )
    console.print(str(result))
    console.print(f"Next: check {st.workspace.relative(result.path)}, then kb transcribe {result.interview_id}")


@app.command()
def transcribe(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(None, metavar="ID", help="Interview ids (default: every interview)."),
    force: bool = typer.Option(False, "--force", help="Redo fresh transcripts too (reviewer corrections are kept)."),
) -> None:
    """Import or transcribe each interview into transcript.json + transcript.md, merging reviewers' corrections."""
    from pipeline.stages import transcribe as transcribe_stage

    st = state(ctx)
    result = transcribe_stage.run(st.settings(), st.workspace, reporter(ctx), ids or None, force=force)
    console.print(f"transcribe: {result}")


# ---------------------------------------------------------------------------------------------
# ASR / diarisation commands (eval-diarisation) are added below this line by the speech helper.


@app.command("eval-diarisation")
def eval_diarisation(
    ctx: typer.Context,
    hypothesis: str = typer.Argument(..., help="Hypothesis: an RTTM file, or an interview id (its transcript.json)."),
    reference: Path = typer.Argument(..., help="Reference RTTM (the true speaker turns)."),
    collar: float = typer.Option(
        0.0, min=0.0, help="Seconds around each reference boundary not scored (0.25 is common)."
    ),
    skip_overlap: bool = typer.Option(False, "--skip-overlap", help="Do not score overlapping speech."),
) -> None:
    """Diarisation error rate (pyannote.metrics) of a hypothesis against a reference RTTM."""
    from pipeline.stages.transcribe import der

    ref_all = der.read_rttm(reference)
    hyp_path = Path(hypothesis)
    if hyp_path.is_file():
        hyp_all = der.read_rttm(hyp_path)
    else:
        hyp_all = {hypothesis: der.transcript_turns(state(ctx).workspace.transcript_json(hypothesis))}
    if len(ref_all) == 1 and len(hyp_all) == 1:
        pairs = [(next(iter(ref_all)), next(iter(ref_all.values())), next(iter(hyp_all.values())))]
    else:
        pairs = [(uri, turns, hyp_all.get(uri, [])) for uri, turns in ref_all.items()]
    for uri, ref_turns, hyp_turns in pairs:
        report = der.diarisation_error(ref_turns, hyp_turns, collar=collar, skip_overlap=skip_overlap)
        mapping = ", ".join(f"{h} = {r}" for h, r in sorted(report.mapping.items()))
        console.print(f"{uri}: {report}", markup=False)
        if mapping:
            console.print(f"  speakers: {mapping}", markup=False)
