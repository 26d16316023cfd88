"""``kb gaps``: what users asked that the knowledge base could not answer, and the next interview's guide."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline.cli._common import console, state
from pipeline.cli.root import app

gaps_app = typer.Typer(
    help="Gaps in the knowledge: uncertain questions, uncovered errors, drafts users relied on, empty coverage.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)
app.add_typer(gaps_app, name="gaps")


@gaps_app.callback()
def gaps_list(
    ctx: typer.Context,
    output_json: bool = typer.Option(False, "--json", help="Print the ranked gaps as JSON."),
    close: bool = typer.Option(
        True, "--close/--no-close", help="First re-ask open questions against the newest bundle."
    ),
) -> None:
    """Rank the gaps: users' repeated uncertain questions, uncovered errors, drafts asked about, empty cells."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.stages import gaps

    st = state(ctx)
    closed = gaps.close_with_newest_bundle(st.workspace, st.settings()) if close else []
    result = gaps.report(st.workspace, st.settings())
    result.closed = closed
    if output_json:
        typer.echo(
            json.dumps({"closed": closed, "gaps": [i.to_json() for i in result.items]}, indent=2, ensure_ascii=False)
        )
        return
    for q in closed:
        console.print(f"closed     {q}  (answered certain by the newest bundle)", markup=False)
    for i in result.items:
        console.print(f"{i.kind:<15} {i.count:>4}  [{i.topic}] {i.text}", markup=False)
        console.print(f"{'':<21}{i.why}", markup=False)
    console.print(f"gaps: {result}. Next: kb gaps guide --interview ID", markup=False)


@gaps_app.command()
def guide(
    ctx: typer.Context,
    interview: str = typer.Option(..., "--interview", help="Id of the next interview (interviews/<id>/guide.md)."),
    limit: int = typer.Option(30, "--limit", min=1, help="Most questions in the guide."),
) -> None:
    """Write the next interview's question guide, grouped by topic, each question with why it is asked."""
    from pipeline.stages import gaps

    st = state(ctx)
    path, n = gaps.write_guide(st.workspace, st.settings(), interview, limit=limit)
    rel = st.workspace.relative(Path(path))
    console.print(
        f"wrote {rel} ({n} question(s)). After the interview: kb add RECORDING --id {interview} --guide {rel}",
        markup=False,
    )
