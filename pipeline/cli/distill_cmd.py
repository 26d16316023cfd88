"""Distillation commands: ``distill`` (transcripts -> draft atoms) and ``cost`` (what the LLM cost)."""

from __future__ import annotations

import json

import typer

from pipeline.cli import app
from pipeline.cli._common import console, reporter, state


@app.command()
def distill(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(None, metavar="ID", help="Interview ids (default: every transcript)."),
    backend: str | None = typer.Option(
        None, "--backend", "-b", help="llm or extractive (default: llm when an endpoint or key is configured)."
    ),
    diff: bool = typer.Option(False, "--diff", help="Print unified diffs of what would change; write nothing."),
    force: bool = typer.Option(False, "--force", help="Redo interviews whose transcript and settings are unchanged."),
    max_cost: float | None = typer.Option(
        None, "--max-cost", metavar="USD", help="Stop before LLM spending would exceed this many dollars."
    ),
    model: str | None = typer.Option(None, "--model", help="LLM model (overrides llm.model)."),
) -> None:
    """Distil transcripts into grounded draft atoms; never overwrites an atom a person edited."""
    from pipeline.errors import BudgetExceededError, InputError
    from pipeline.stages import distill as distill_stage

    if backend not in (None, "llm", "extractive"):
        raise InputError(f"unknown backend '{backend}'", "Use --backend llm or --backend extractive.")
    if max_cost is not None and max_cost < 0:
        raise InputError("--max-cost must be zero or more", "Give a budget in US dollars, e.g. --max-cost 0.50.")
    st = state(ctx)
    settings = st.settings(**{"llm.model": model})
    rep = reporter(ctx)
    result = distill_stage.run(
        settings, st.workspace, rep, list(ids or []) or None, backend=backend, diff=diff, force=force, max_cost=max_cost
    )
    for text in result.diffs if diff else ():
        typer.echo(text, nl=not text.endswith("\n"))
    for o in result.outcomes:
        if o.action in ("created", "updated", "proposed") and not diff:
            rep.info(f"{o.action}: {st.workspace.relative(o.path)}")
    for interview, usage in sorted(result.per_interview.items()):
        console.print(f"  {interview}: {usage}")
    console.print(f"distill: {result}")
    if result.stopped:
        raise BudgetExceededError(result.stopped, "Raise --max-cost; finished windows are cached, so a re-run resumes.")
    if result.failed_windows:
        from pipeline.errors import BackendError

        raise BackendError(
            f"{result.failed_windows} of {result.windows} window(s) failed (see the warnings above); their interviews were not finished",
            "Fix the endpoint or model, then run kb distill again: windows that succeeded are cached and not paid for twice.",
        )


@app.command()
def cost(
    ctx: typer.Context,
    run: str | None = typer.Option(None, "--run", help="Only this run id."),
    limit: int = typer.Option(10, "--limit", help="How many recent runs to list."),
    output_format: str = typer.Option("human", "--format", "-f", help="human or json."),
) -> None:
    """Report LLM tokens and cost per run, per interview and per atom, with totals."""
    from rich.table import Table

    from pipeline.index.runlog import report

    if output_format not in ("human", "json"):
        raise typer.BadParameter(f"'{output_format}' is not one of 'human', 'json'", param_hint="'--format'")
    ws = state(ctx).workspace
    rep = report(ws.run_log, run_id=run, limit=limit)
    if run is not None and not rep.runs:
        from pipeline.errors import NotFoundError

        recent = [r["run_id"] for r in report(ws.run_log, limit=5).runs]
        raise NotFoundError(
            f"No LLM run '{run}' in {ws.relative(ws.run_log)}.",
            f"Recent runs: {', '.join(recent)}." if recent else "No LLM runs logged yet (kb distill --backend llm).",
        )
    if output_format == "json":
        data = {"runs": rep.runs, "interviews": rep.interviews, "atoms": rep.atoms, "totals": rep.totals}
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    if not rep.runs:
        console.print("No LLM runs logged yet (kb distill --backend llm writes .kb/runs.duckdb).")
        return
    runs = Table(title="Runs", show_edge=False)
    for col in (
        "run",
        "status",
        "model",
        "requests",
        "tokens in",
        "tokens out",
        "cost USD",
    ):  # ids stay whole for --run
        runs.add_column(
            col,
            justify="right" if col not in ("run", "status", "model") else "left",
            no_wrap=col == "run",
            min_width=len(rep.runs[0]["run_id"]) if col == "run" else None,
        )
    for r in rep.runs:
        runs.add_row(
            r["run_id"],
            r["status"] or "",
            r["model"] or "",
            str(r["requests"] or 0),
            str(r["tokens_in"] or 0),
            str(r["tokens_out"] or 0),
            f"{r['cost_usd'] or 0:.4f}",
        )
    console.print(runs)
    per = Table(title="Per interview", show_edge=False)
    for col in ("interview", "requests", "re-asks", "retries", "tokens in", "tokens out", "cost USD"):
        per.add_column(col, justify="left" if col == "interview" else "right")
    for r in rep.interviews:
        per.add_row(
            str(r["interview"]),
            str(r["requests"]),
            str(r["reasks"]),
            str(r["retries"]),
            str(r["tokens_in"]),
            str(r["tokens_out"]),
            f"{r['cost_usd'] or 0:.4f}",
        )
    console.print(per)
    if rep.atoms:
        atoms = Table(title="Per atom (latest run that wrote it)", show_edge=False)
        for col in ("atom", "type", "tokens in", "tokens out", "cost USD"):
            atoms.add_column(col, justify="left" if col in ("atom", "type") else "right")
        for r in rep.atoms:
            atoms.add_row(
                r["atom_id"], r["atom_type"], str(r["tokens_in"]), str(r["tokens_out"]), f"{r['cost_usd']:.4f}"
            )
        console.print(atoms)
    t = rep.totals
    console.print(
        f"Total: {t['runs']} run(s), {t['requests']} request(s), {t['tokens_in']} tokens in, "
        f"{t['tokens_out']} out, ${t['cost_usd']:.4f}"
    )
