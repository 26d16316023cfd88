"""``kb site``: build the review site into build/site/ (or serve it with live reload)."""

from __future__ import annotations

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state


@app.command("site")
def site(
    ctx: typer.Context,
    serve: bool = typer.Option(False, "--serve", help="Serve the site with live reload instead of building it."),
    dev_addr: str | None = typer.Option(
        None, "--dev-addr", metavar="HOST:PORT", help="Address to serve on (default: mkdocs.yml's, 127.0.0.1:8000)."
    ),
    strict: bool = typer.Option(
        True, "--strict/--no-strict", help="Stop on any warning (broken link, unreadable atom); default strict."
    ),
) -> None:
    """Build the review site (atoms, transcripts with audio, review queue, coverage) into build/site/."""
    from pipeline import runner
    from pipeline.stages import site as site_stage

    st = state(ctx)
    settings = st.settings()
    rep = reporter(ctx)
    findings = runner.check_for_site(settings, st.workspace, rep).findings
    result = site_stage.run(
        settings, st.workspace, rep, serve=serve, strict=strict, findings=findings, dev_addr=dev_addr
    )
    if not serve:
        console.print(f"site: {result}")
