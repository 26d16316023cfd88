"""Workspace commands: ``init``, ``config`` and ``run`` (the whole pipeline); ``schemas`` is in schemas_cmd."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline.cli._common import console, err_console, reporter, state
from pipeline.cli.root import app
from pipeline.errors import KbError


@app.command()
def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="Folder for the new workspace (created if missing)."),
    name: str | None = typer.Option(None, help="Name shown in the site title (default: folder name)."),
    git: bool = typer.Option(True, "--git/--no-git", help="Create a git repository (unless inside one) and commit."),
) -> None:
    """Scaffold a new workspace: interviews/, atoms/, site/, mkdocs.yml, kb.yaml, CI and pre-commit."""
    from pipeline.stages import init as init_stage

    created = init_stage.run(directory, name=name)
    rep = reporter(ctx)
    for path in created:
        rep.info(f"created {path}")
    if git:
        rep.info(init_stage.init_git(directory, created))
    console.print(f'Workspace ready in {directory}. Next: kb add RECORDING, or kb new TYPE "Title".')


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
    via: str = typer.Option("local", "--via", help="local (this process) | celery (kb worker processes)."),
    broker: str | None = typer.Option(
        None, "--broker", help="--via celery: the broker URL (default workers.broker_url)."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="--via celery: wait for the run and report it."),
    wait_turn: bool = typer.Option(
        False, "--wait-turn", help="--via celery: if another Celery run holds the workspace, start after it."
    ),
) -> None:
    """Run the stages in order for the workspace, skipping what is fresh and saying so."""
    from pipeline import runner

    st = state(ctx)
    if via not in ("local", "celery"):
        raise typer.BadParameter(f"--via must be local or celery, not '{via}'")
    try:
        steps = runner.selected(only, skip)
    except runner.UnknownStepError as exc:
        raise typer.BadParameter(str(exc)) from None
    if via == "celery":
        from pipeline.cli.jobs_cmd import run_via_celery

        return run_via_celery(ctx, force=force, broker=broker, wait_for=wait, steps=steps, wait_turn=wait_turn)
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
    if result.failures:  # the others went through every step; these did not
        for step, iid, why in result.failures:
            err_console.print(f"failed: {step} {iid}: {why}", style="red", markup=False)
        raise KbError(
            f"{len(result.failures)} interview(s) failed ({', '.join(i for _, i, _ in result.failures)}); "
            "the rest were processed",
            "Fix what each failure line says, then run 'kb run' again (fresh steps are skipped).",
        )
    if result.failed_check:
        raise typer.Exit(3)
