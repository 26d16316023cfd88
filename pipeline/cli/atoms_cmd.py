"""Atom commands: ``new`` (and ``check``)."""

from __future__ import annotations

import datetime as dt
import json
import os
from enum import StrEnum
from pathlib import Path

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state
from pipeline.models import ATOM_TYPES


class Format(StrEnum):
    human = "human"
    json = "json"
    github = "github"


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
        raise InputError("the title is empty", 'Give the atom a title, e.g. kb new error "Sync times out".')
    ws = state(ctx).workspace
    text = atoms.skeleton(atom_type, title.strip(), author=author, today=_today())
    path = ws.atom_path(atom_type, atoms.slugify(title))
    write_new_text(path, text)
    console.print(str(ws.relative(path)))


def _today() -> dt.date | None:
    """``KB_TODAY`` (YYYY-MM-DD) freezes the date ``kb new`` writes (for golden tests and demos)."""
    value = os.environ.get("KB_TODAY")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        from pipeline.errors import ConfigError

        raise ConfigError(f"KB_TODAY='{value}' is not a date.", "Set it as YYYY-MM-DD, or unset it.") from None


@app.command()
def check(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        None, metavar="PATH", help="Atom files or folders (default: every atom under atoms/).", show_default=False
    ),
    output_format: Format = typer.Option(
        Format.human, "--format", "-f", help="human, json or github (workflow annotations)."
    ),
    no_duplicates: bool = typer.Option(False, "--no-duplicates", help="Skip near-duplicate detection (faster)."),
) -> None:
    """Check atoms: front matter, sections, FAQ, config blocks, links, duplicates. Exit 3 on errors."""
    from pipeline.stages import check as check_stage

    st = state(ctx)
    report = check_stage.run(
        st.settings(), st.workspace, reporter(ctx), paths=list(paths or []) or None, duplicates=not no_duplicates
    )
    if output_format == Format.json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    elif output_format == Format.github:
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
            Text.assemble(f"  {where:<7} ", (f"{f.severity:<9}", colour), (f"{f.rule:<21}", "cyan"), " ", f.message)
        )
        if f.hint:
            console.print(Text(f"  {'':<7} {'':<9}{'':<21} hint: {f.hint}", style="dim"))
    if report.findings:
        console.print()
    files = len({f.path for f in report.findings})
    if report.findings:
        text = (
            f"{_n(report.errors, 'error')}, {_n(report.warnings, 'warning')} in {files} of {_n(report.files, 'atom')}"
        )
    else:
        text = f"{_n(report.files, 'atom')} checked: no problems"
    if not report.duplicates:
        text += " (near-duplicates not checked)"
    console.print(Text(("✖ " if report.errors else "✔ ") + text, style="bold red" if report.errors else "bold green"))


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
