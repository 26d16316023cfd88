"""Atom commands: ``new`` (and ``check``)."""

from __future__ import annotations

import typer

from pipeline.cli import app
from pipeline.cli._common import console, state
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
