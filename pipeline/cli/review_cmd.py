"""``kb review``: the review queue and its actions (show, accept, reject, promote)."""

from __future__ import annotations

import json

import typer

from pipeline.cli._common import console, state
from pipeline.cli.root import app

review_app = typer.Typer(
    help="The review queue (errors, findings, proposals, drafts) and what a reviewer does with it.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")


def _findings(ctx: typer.Context) -> list:
    from pipeline.reporting import Reporter
    from pipeline.stages import check

    s = state(ctx)
    return check.run(s.settings(), s.workspace, Reporter()).findings


@review_app.callback()
def review(
    ctx: typer.Context,
    output_json: bool = typer.Option(False, "--json", help="Print the queue as JSON."),
    all_atoms: bool = typer.Option(False, "--all", help="Also list validated and archived atoms with nothing to do."),
) -> None:
    """List the queue in the order to act on it, with why each atom is there."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.stages import review as rv

    items = rv.queue(state(ctx).workspace, _findings(ctx), include_done=all_atoms)
    if output_json:
        typer.echo(json.dumps([i.to_json() for i in items], indent=2, ensure_ascii=False))
        return
    if not items:
        console.print("The review queue is empty: nothing needs a reviewer.")
        return
    for i in items:
        console.print(f"{i.bucket:<10} {i.atom_id}  [{i.type}, {i.status}]  {i.title}", markup=False)
        for reason in i.reasons:
            console.print(f"{'':<10}   - {reason}", markup=False)
    console.print(f"{len(items)} atom(s) in the queue. Next: kb review show {items[0].atom_id}", markup=False)


@review_app.command()
def show(ctx: typer.Context, atom_id: str = typer.Argument(..., metavar="ID")) -> None:
    """The atom, its findings, and its proposal as a diff."""
    from pipeline.stages import review as rv

    shown = rv.show(state(ctx).workspace, atom_id, _findings(ctx))
    console.print(shown["text"], markup=False, end="")
    console.print(f"\n== findings ({len(shown['findings'])})", markup=False)
    for f in shown["findings"]:
        console.print(f"{f.path}:{f.line or 1}: {f.severity}: {f.rule}: {f.message}", markup=False)
    if shown["diff"]:
        console.print(f"\n== proposal {shown['proposal']} (kb review accept|reject {atom_id})", markup=False)
        console.print(shown["diff"], markup=False, end="")
    else:
        console.print("\n== no proposal waiting", markup=False)


_COMMIT = typer.Option(False, "--commit", help="Record the change as a git commit.")
_BY = typer.Option(None, "--by", help="Reviewer's name (default: git config user.name).")


@review_app.command()
def accept(
    ctx: typer.Context, atom_id: str = typer.Argument(..., metavar="ID"), commit: bool = _COMMIT, by: str | None = _BY
) -> None:
    """Merge kb's proposal into the atom, keeping the reviewer's own fields (title, status, tags, reviewers)."""
    from pipeline.stages import review as rv

    console.print(_said(rv.accept(state(ctx).workspace, atom_id, commit=commit, by=by)), markup=False)


@review_app.command()
def reject(
    ctx: typer.Context, atom_id: str = typer.Argument(..., metavar="ID"), commit: bool = _COMMIT, by: str | None = _BY
) -> None:
    """Remove kb's proposal and remember it, so the same proposal is not written again."""
    from pipeline.stages import review as rv

    console.print(_said(rv.reject(state(ctx).workspace, atom_id, commit=commit, by=by)), markup=False)


@review_app.command()
def promote(
    ctx: typer.Context,
    atom_id: str = typer.Argument(..., metavar="ID"),
    to: str = typer.Option(..., "--to", help="in-review or validated."),
    by: str | None = _BY,
    commit: bool = _COMMIT,
) -> None:
    """Move the atom to in-review or validated, naming the reviewer in reviewed_by."""
    from pipeline.stages import review as rv

    done = rv.promote(state(ctx).workspace, atom_id, to, by=by, findings=_findings(ctx), commit=commit)
    console.print(_said(done), markup=False)


def _said(done) -> str:  # noqa: ANN001 - review.actions.Done, imported lazily
    return done.message + (f" (commit {done.commit[:10]})" if done.commit else "")
