"""``kb change plan / apply / rollback``: one recipe over many config files, planned, applied
all-or-none and reversible. Also the hook that finishes an interrupted apply on the next command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from pipeline.cli._common import console, err_console, reporter, state
from pipeline.cli.root import ON_START, app
from pipeline.workspace import find_workspace

change_app = typer.Typer(
    help="Plan one change over many config files (diff first), apply it all-or-none, roll it back.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(change_app, name="change")

SHOWN_DIFFS = 3


def recover_interrupted(workspace_arg: Path | None) -> None:
    """Roll an apply that a crash interrupted forward or back, and say which (cheap when none)."""
    try:
        root = Path(workspace_arg).resolve() if workspace_arg else find_workspace()
    except OSError:
        return
    if not (root / "plans").is_dir() or not any((root / "plans").glob("*/journal.json")):
        return
    from pipeline.change.apply import recover
    from pipeline.workspace import Workspace

    for line in recover(Workspace(root)):
        err_console.print(f"recovered: {line}", markup=False)


ON_START.append(recover_interrupted)


def _show_diff(patch: str, folder: Path, everything: bool) -> None:
    if not patch.strip():
        return
    pieces = patch.replace("\n--- ", "\n\0--- ").split("\0")
    shown = pieces if everything else pieces[:SHOWN_DIFFS]
    for piece in shown:
        for line in piece.splitlines():
            style = (
                "green"
                if line.startswith("+") and not line.startswith("+++")
                else "red"
                if line.startswith("-") and not line.startswith("---")
                else "cyan"
                if line.startswith("@@")
                else None
            )
            console.print(line, style=style, markup=False, highlight=False)
    if len(pieces) > len(shown):
        console.print(f"... and {len(pieces) - len(shown)} more file(s) in {folder / 'plan.patch'} (--diff shows all)")


@change_app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    instruction: str | None = typer.Argument(None, help="What to change, in words (the LLM writes the recipe)."),
    files: list[str] = typer.Option([], "--files", help="Glob of the files, relative to this folder (repeatable)."),
    where: list[str] = typer.Option([], "--where", help="PATH=VALUE, PATH^=PREFIX or PATH (exists); ANDed."),
    set_: list[str] = typer.Option([], "--set", help="PATH=VALUE (VALUE is YAML: 2.5 a number, '2.5' a string)."),
    delete: list[str] = typer.Option([], "--delete", help="PATH to remove."),
    append: list[str] = typer.Option([], "--append", help="PATH=VALUE: add at the end of the list unless present."),
    recipe: Path | None = typer.Option(None, "--recipe", help="A recipe file (YAML: where, ops), e.g. a saved plan's."),
    schema: str | None = typer.Option(
        None, "--schema", help="JSON Schema file or registered name (default: registered)."
    ),
    fmt: str = typer.Option("text", "--format", help="text or json."),
    diff: bool = typer.Option(False, "--diff", help="Print the whole diff (default: the first files)."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 4 for a valid plan with changes."),
) -> None:
    """Plan a change: edit every matching document in memory, validate, write plans/<id>/ (nothing else)."""
    from pipeline.change import request

    st = state(ctx)
    settings = st.settings()
    rep = reporter(ctx)
    plan = request.plan(
        settings,
        st.workspace,
        base=Path.cwd(),
        instruction=instruction,
        files=files,
        where=where,
        set_=set_,
        delete=delete,
        append=append,
        recipe_file=recipe,
        schema=schema,
        progress=rep.progress,
    )
    ws = st.workspace
    if fmt == "json":
        data = plan.to_json()
        data["folder"] = ws.relative(plan.folder)
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _show_diff((plan.folder / "plan.patch").read_text(encoding="utf-8"), plan.folder, diff)
        for f in plan.files:
            if f.status == "skipped":
                rep.warn(f"skipped {f.display}: {f.reason}")
            elif f.status == "invalid":
                rep.warn(f"invalid {f.display} (schema {f.schema}): " + "; ".join(f.errors[:3]))
        console.print(f"plan {plan.id}: {plan.summary_line()}")
        console.print(f"saved in {ws.relative(plan.folder)}/ (plan.json, plan.patch, recipe.yaml)")
        if not plan.valid:
            console.print("refused: a result does not validate; nothing can be applied")
        elif plan.changes:
            console.print(f"apply with: kb change apply {plan.id}")
    if not plan.valid:
        raise typer.Exit(3)
    if detailed_exitcode and plan.changes:
        raise typer.Exit(4)


@change_app.command("apply")
def apply_cmd(
    ctx: typer.Context,
    plan_id: str = typer.Argument(..., help="The plan's id (plans/<id>/)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
) -> None:
    """Apply a plan: refuses stale or invalid plans; writes all files or none; keeps rollback.patch."""
    from pipeline.change import apply as applier
    from pipeline.change.engine import load_plan

    st = state(ctx)
    ws = st.workspace
    settings = st.settings()
    plan = load_plan(ws, plan_id)
    folder = ws.plans_dir / plan_id
    if not yes:
        _show_diff((folder / "plan.patch").read_text(encoding="utf-8"), folder, False)
        _confirm(f"apply plan {plan_id} ({plan['summary']['changed']} file(s))?")
    result = applier.apply(ws, plan_id, pause_s=settings.change.apply_pause_s)
    if result.already:
        console.print(f"plan {plan_id} is already applied; nothing changed")
    elif not result.written:
        console.print(f"plan {plan_id} changes nothing")
    else:
        console.print(f"applied plan {plan_id}: {len(result.written)} file(s) written")
        console.print(f"undo with: kb change rollback {plan_id}  (patch: {ws.relative(folder / 'rollback.patch')})")


@change_app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    plan_id: str = typer.Argument(..., help="The applied plan's id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Roll back without asking."),
    force: bool = typer.Option(False, "--force", help="Restore even files edited after the apply."),
) -> None:
    """Restore every file an applied plan changed, byte for byte."""
    from pipeline.change import apply as applier

    st = state(ctx)
    ws = st.workspace
    settings = st.settings()
    if not yes:
        _confirm(f"roll back plan {plan_id}?")
    result = applier.rollback(ws, plan_id, force=force, pause_s=settings.change.apply_pause_s)
    console.print(f"rolled back plan {plan_id}: {len(result.written)} file(s) restored")


def _confirm(question: str) -> None:
    from pipeline.errors import InputError

    if not sys.stdin.isatty():
        raise InputError("not asking on a non-interactive input", "Pass --yes to apply without a question.")
    if not typer.confirm(question):
        raise typer.Exit(1)
