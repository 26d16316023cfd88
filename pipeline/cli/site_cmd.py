"""``kb site``: build the review site into build/site/ (or serve it with live reload)."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state
from pipeline.reporting import Reporter


def check_findings(settings: Any, workspace: Any, rep: Reporter) -> list | None:
    """Findings of ``kb check`` for the coverage page; None when the check stage is not installed."""
    try:
        check = importlib.import_module("pipeline.stages.check")
    except ModuleNotFoundError as exc:
        if exc.name == "pipeline.stages.check":
            rep.skip("site: kb check is not available in this version; the coverage page lists no findings")
            return None
        raise
    report = check.run(settings, workspace, Reporter(), duplicates=settings.check.duplicates)
    findings = list(getattr(report, "findings", []) or [])
    errors = sum(1 for f in findings if getattr(f, "severity", None) == "error")
    rep.info(f"kb check: {errors} errors, {len(findings) - errors} other findings (listed on the coverage page)")
    return findings


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
    from pipeline.stages import site as site_stage

    st = state(ctx)
    settings = st.settings()
    rep = reporter(ctx)
    findings = check_findings(settings, st.workspace, rep)
    result = site_stage.run(
        settings, st.workspace, rep, serve=serve, strict=strict, findings=findings, dev_addr=dev_addr
    )
    if not serve:
        console.print(f"site: {result}")
