"""``kb schemas``: ``write`` kb's own JSON Schemas; ``add`` the target system's config schemas."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import console, state
from pipeline.cli.root import app

schemas_app = typer.Typer(
    help="JSON Schemas: kb's own (write) and the target system's config schemas (add).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(schemas_app, name="schemas")


@schemas_app.command("write")
def write(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, help="Folder to write to (default: the workspace's schemas/)."),
) -> None:
    """Write JSON Schemas of the atom front matter, interview, transcript, bundle manifest and system manifest."""
    from pipeline.ops.manifest import write_schema
    from pipeline.stages import schemas as schemas_stage

    folder = out or state(ctx).workspace.schemas_dir
    changed = schemas_stage.run(folder)
    changed += [p for p in [write_schema(folder)] if p]
    console.print(f"{len(changed)} schema file(s) updated in {folder}" if changed else f"schemas in {folder} are fresh")


@schemas_app.command("add")
def add(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="JSON Schema files (or CRD YAML files) of the target system."),
    for_: list[str] = typer.Option([], "--for", help="Glob (relative to the workspace) of the files they validate."),
) -> None:
    """Register target config schemas in schemas/configs/ (and, with --for, the files they validate)."""
    from pipeline.change import schemas as target_schemas

    ws = state(ctx).workspace
    for added in target_schemas.add(ws, files, for_):
        what = "added" if added.changed else "unchanged"
        where = f" for {', '.join(added.globs)}" if added.globs else ""
        console.print(f"{what}: {ws.relative(added.path)} (schema '{added.name}'){where}")
