"""``kb setup new / apply``: config files from a described situation, then into a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import console, state
from pipeline.cli.root import app

setup_app = typer.Typer(
    help="Propose a validated set of config files from a situation (each value cited or an assumption); apply it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(setup_app, name="setup")


@setup_app.command("new")
def new_cmd(
    ctx: typer.Context,
    situation: str = typer.Argument(..., help="The situation, in words (what to set up, where, for whom)."),
    answers: Path | None = typer.Option(None, "--answers", help="YAML: file -> {pointer: value}."),
    set_: list[str] = typer.Option([], "--set", help="FILE:POINTER=VALUE (VALUE is YAML); repeatable."),
    offline: bool = typer.Option(False, "--offline", help="Do not ask the LLM even when one is configured."),
) -> None:
    """Write proposals/setup-<id>/: the files, plan.json and EXPLAIN.md (nothing else is touched)."""
    from pipeline.setup import output

    st = state(ctx)
    ws = st.workspace
    given = output.parse_answers(answers, set_)
    proposal = output.new(st.settings(), ws, situation, given, use_llm=False if offline else None)
    console.print(
        f"proposal {proposal.id} ({proposal.mode}): {len(proposal.files)} file(s), "
        f"{proposal.assumptions} value(s) marked as assumptions"
    )
    for name in proposal.files:
        console.print(f"  {ws.relative(proposal.folder / 'files' / name)}")
    console.print(f"why each value: {ws.relative(proposal.folder / 'EXPLAIN.md')}")
    console.print(f"apply with: kb setup apply {proposal.id} --to DIR")


@setup_app.command("apply")
def apply_cmd(
    ctx: typer.Context,
    proposal_id: str = typer.Argument(..., help="The proposal's id (setup-<id>)."),
    to: Path = typer.Option(..., "--to", help="Folder to write the files into."),
    force: bool = typer.Option(False, "--force", help="Replace existing files that differ."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
) -> None:
    """Write the proposal's files into a folder through the change engine: diff first, all-or-none, rollback."""
    from pipeline.change import apply as applier
    from pipeline.cli.change_cmd import _confirm, _show_diff
    from pipeline.setup import output

    st = state(ctx)
    ws = st.workspace
    plan, existing = output.plan_apply(ws, proposal_id, to)
    _show_diff((plan.folder / "plan.patch").read_text(encoding="utf-8"), plan.folder, True)
    if existing and not force:
        output.refuse_overwrite(ws, plan, existing, to)
    if not plan.changes:
        console.print(f"the files in {to} already match proposal {proposal_id}; nothing to do")
        return
    if not yes:
        _confirm(f"write {plan.changes} file(s) into {to}?")
    result = applier.apply(ws, plan.id, pause_s=st.settings().change.apply_pause_s)
    console.print(f"applied {proposal_id} as plan {plan.id}: {len(result.written)} file(s) written in {to}")
    console.print(f"undo with: kb change rollback {plan.id}")
