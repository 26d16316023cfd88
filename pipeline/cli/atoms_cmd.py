"""Atom commands: ``new`` (and ``check``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state
from pipeline.models import ATOM_TYPES


@app.command()
def new(
    ctx: typer.Context,
    atom_type: str = typer.Argument(..., metavar="TYPE", help=f"One of: {', '.join(ATOM_TYPES)}."),
    title: str = typer.Argument(..., help="The atom's title; its id (file name) is slugged from it."),
    author: str | None = typer.Option(None, help="Author shown in the front matter."),
) -> None:
    """Write a skeleton atom with its type's sections to atoms/<type>/<id>.md (never overwrites)."""
    from pipeline import atoms
    from pipeline.errors import InputError
    from pipeline.workspace import write_new_text

    if atom_type not in ATOM_TYPES:
        from rapidfuzz import process

        best = process.extractOne(atom_type, ATOM_TYPES)
        raise InputError(
            f"unknown atom type '{atom_type}'",
            f"Did you mean '{best[0]}'? Types: {', '.join(ATOM_TYPES)}.",
        )
    if not title.strip():
        raise InputError("the title is empty", "Give the atom a title, e.g. kb new error \"Sync times out\".")
    ws = state(ctx).workspace
    text = atoms.skeleton(atom_type, title.strip(), author=author)
    path = ws.atom_path(atom_type, atoms.slugify(title))
    write_new_text(path, text)
    console.print(str(ws.relative(path)))


@app.command()
def check(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(None, help="Atom files or folders (default: every atom under atoms/)."),
    output_format: str = typer.Option("human", "--format", "-f", help="human, json or github (annotations)."),
    no_duplicates: bool = typer.Option(False, "--no-duplicates", help="Skip near-duplicate detection (faster)."),
) -> None:
    """Check atoms: front matter, sections, FAQ, config blocks, links, duplicates. Exit 3 on errors."""
    from pipeline.errors import InputError
    from pipeline.stages import check as check_stage

    if output_format not in ("human", "json", "github"):
        raise InputError(f"unknown format '{output_format}'", "Use --format human, json or github.")
    st = state(ctx)
    report = check_stage.run(
        st.settings(), st.workspace, reporter(ctx), paths=list(paths or []) or None, duplicates=not no_duplicates
    )
    if output_format == "json":
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    elif output_format == "github":
        for line in report.github_lines():
            typer.echo(line)
        typer.echo(str(report))
    else:
        _print_human(report)
    if report.errors:
        raise typer.Exit(3)


def _print_human(report) -> None:  # noqa: ANN001 - CheckReport, imported lazily
    from rich.text import Text

    current = None
    for f in report.findings:
        if f.path != current:
            if current is not None:
                console.print()
            console.print(Text(f.path, style="bold underline"))
            current = f.path
        where = f"{f.line or 1}:{f.column}" if f.column else f"{f.line or 1}"
        colour = "red" if f.severity == "error" else "yellow"
        console.print(
            Text.assemble(
                f"  {where:<7} ", (f"{f.severity:<9}", colour), (f"{f.rule:<21}", "cyan"), " ", f.message
            )
        )
        if f.hint:
            console.print(Text(f"  {'':<7} {'':<9}{'':<21} hint: {f.hint}", style="dim"))
    if report.findings:
        console.print()
    files = len({f.path for f in report.findings})
    text = (
        f"{report.files} atom(s) checked: {report.errors} error(s), {report.warnings} warning(s)"
        f" in {files} file(s)" + ("" if report.duplicates else " (near-duplicates not checked)")
    )
    console.print(Text(("✖ " if report.errors else "✔ ") + text, style="bold red" if report.errors else "bold green"))
