"""``kb import-docs DIR``: cut an existing Markdown documentation tree into draft atoms."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state


@app.command("import-docs")
def import_docs(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., metavar="DIR", help="Folder of Markdown docs (sub-folders included)."),
    tag: list[str] = typer.Option([], "--tag", "-t", metavar="TAG", help="Tag to add to every atom (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would change; write nothing."),
) -> None:
    """Cut Markdown docs into draft atoms (one screen each), typed from headings and content.

    Re-running is safe: unchanged atoms stay byte-identical, atoms a person has edited are kept
    (the import's new version goes beside them as <id>.proposed.md), atoms a person deleted are
    not made again, and atoms whose section vanished from the docs are reported, not deleted.
    """
    from pipeline.stages import import_docs as stage

    st = state(ctx)
    report = stage.run(st.settings(), st.workspace, reporter(ctx), directory, tags=tag, dry_run=dry_run)
    verbs = {
        "create": "would create" if dry_run else "created",
        "update": "would update" if dry_run else "updated",
        "propose": "would propose" if dry_run else "proposed",
        "kept": "kept",
        "vanished": "source vanished",
        "deleted": "not recreated",
    }
    for change in report.changes:
        if change.action == "unchanged" or (change.action in ("create", "update") and not dry_run):
            continue
        note = f"  ({change.note})" if change.note else ""
        console.print(f"{verbs[change.action]}: {change.path}{note}", markup=False)
    types = "  ".join(f"{t}: {n}" for t, n in report.by_type.items())
    console.print(f"atoms by type  {types}", markup=False)
    counts = "  ".join(
        f"{k}: {v}"
        for k, v in report.counts.items()
        if v or k in ("created", "updated", "unchanged", "kept-human-edits")
    )
    console.print(f"{'dry run, ' if dry_run else ''}{counts}", markup=False)
    console.print(str(report), markup=False)
