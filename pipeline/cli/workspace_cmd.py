"""Workspace commands: ``init``, ``schemas``, ``config`` and ``run`` (the whole pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state


@app.command()
def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Folder for the new workspace (created if missing)."),
    name: str | None = typer.Option(None, help="Name shown in the site title (default: folder name)."),
) -> None:
    """Scaffold a new workspace: interviews/, atoms/, site/, mkdocs.yml, kb.yaml, CI and pre-commit."""
    from pipeline.stages import init as init_stage

    created = init_stage.run(directory, name=name)
    rep = reporter(ctx)
    for path in created:
        rep.info(f"created {path}")
    console.print(f'Workspace ready in {directory}. Next: kb add RECORDING, or kb new TYPE "Title".')


@app.command()
def schemas(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, help="Folder to write to (default: the workspace's schemas/)."),
) -> None:
    """Write JSON Schemas of the atom front matter, interview, transcript and bundle manifest."""
    from pipeline.stages import schemas as schemas_stage

    folder = out or state(ctx).workspace.schemas_dir
    changed = schemas_stage.run(folder)
    console.print(f"{len(changed)} schema file(s) updated in {folder}" if changed else f"schemas in {folder} are fresh")


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print every setting with its current value (flags > KB_* env > kb.yaml > defaults)."""
    from pipeline.config import Settings
    from pipeline.errors import NotFoundError

    try:
        settings = state(ctx).settings()
    except NotFoundError:  # outside a workspace: defaults and KB_* environment
        if state(ctx).workspace_arg is not None:
            raise
        settings = Settings.load(None)
    console.print_json(json.dumps(settings.model_dump(mode="json")))


@app.command("run")
def run_pipeline(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Redo every step, even where outputs are fresh."),
    only: list[str] = typer.Option([], "--only", metavar="STEP", help="Run only these steps (repeatable)."),
    skip: list[str] = typer.Option([], "--skip", metavar="STEP", help="Skip these steps (repeatable)."),
) -> None:
    """Run the stages in order for the workspace, skipping what is fresh and saying so."""
    from pipeline import runner

    st = state(ctx)
    try:
        runner.selected(only, skip)
    except runner.UnknownStepError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = st.settings()
    result = runner.run(
        settings,
        st.workspace,
        reporter(ctx),
        force=force,
        only=only,
        skip=skip,
        on_step=lambda name, report: console.print(f"{name}: {report}"),
    )
    if result.failed_check:
        raise typer.Exit(3)
