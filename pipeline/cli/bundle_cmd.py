"""Bundle commands: ``kb export`` (atoms -> one DuckDB bundle) and ``kb eval`` (retrieval quality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from pipeline.cli._common import console, err_console, reporter, state
from pipeline.cli.root import app


@app.command()
def export(
    ctx: typer.Context,
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Bundle file, or a folder for the versioned name (default: dist/kb-<date>-<checksum>.duckdb).",
    ),
    status: list[str] = typer.Option(
        [],
        "--status",
        metavar="STATUS",
        help="Export only atoms with this status (repeatable; e.g. --status validated). Default: all but archived.",
    ),
    force: bool = typer.Option(False, "--force", help="Write a new bundle even if the atoms are unchanged."),
    to: str | None = typer.Option(
        None,
        "--to",
        metavar="URL",
        help="Copy the newest bundle (or --bundle) into Postgres + pgvector at this postgresql:// URL.",
    ),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="With --to: the bundle to copy (default: newest dist/kb-*.duckdb)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="With --to: drop the index first (e.g. after changing embed.model)."
    ),
) -> None:
    """Write the atoms (never archived ones) as one DuckDB bundle with vectors and a manifest.

    With --to postgresql://…, copy a bundle into Postgres instead (atoms upserted, stale ones deleted).
    """
    from pipeline.stages import export as export_stage

    st = state(ctx)
    if to is not None or bundle is not None or replace:
        from pipeline.config import Settings
        from pipeline.errors import NotFoundError
        from pipeline.index.postgres import is_postgres_url

        try:
            ws, settings = st.workspace, st.settings()
        except NotFoundError:  # --bundle FILE works outside a workspace
            ws, settings = None, Settings.load(None)
        url = to or settings.index.url
        if not is_postgres_url(url):
            raise typer.BadParameter(
                "--to must be a postgresql:// URL (or set index.url / KB_INDEX_URL)", param_hint="--to"
            )
        report = export_stage.to_postgres(settings, ws, reporter(ctx), str(url), bundle=bundle, replace=replace)
        console.print(
            f"export: {report.rows_changed} changes ({report.inserted} inserted, {report.updated} updated, "
            f"{report.deleted} deleted, {report.unchanged} unchanged)",
            markup=False,
        )
        return
    report = export_stage.run(st.settings(), st.workspace, reporter(ctx), out=out, statuses=status or None, force=force)
    console.print(f"export: {report}", markup=False)


def _eval_llm(settings: Any) -> Any:
    """The configured LLM client for ``kb eval --llm``; checked now, not at the first question it would read."""
    from pipeline.backends.llm.client import configured, make_client, no_endpoint

    if not configured(settings):
        raise no_endpoint(settings.llm, "or drop --llm to judge with the offline signals alone")
    return make_client(settings)


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle to evaluate (default: newest dist/kb-*.duckdb)."
    ),
    questions: Path | None = typer.Option(
        None,
        "--questions",
        help="JSONL: {question, expected_atoms | expected_sources} per line (default: the atoms' FAQ).",
    ),
    k: int = typer.Option(10, "--k", min=1, max=100, help="Hits per question."),
    min_recall: float | None = typer.Option(
        None, "--min-recall", min=0.0, max=1.0, help="Exit 3 when recall@k is below this (a CI quality gate)."
    ),
    conversations: Path | None = typer.Option(
        None, "--conversations", help='JSONL: {"turns": [...], "expected": [...]} per line: recall of the last turn.'
    ),
    holdout: bool = typer.Option(
        False,
        "--holdout",
        help="Hide each FAQ question's own pair from the search: the atom must be found by its other passages.",
    ),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table or json."),
    index: str | None = typer.Option(
        None,
        "--index",
        metavar="URL",
        help="Evaluate the Postgres index at this postgresql:// URL (password: PGPASSWORD or KB_INDEX_URL).",
    ),
    use_llm: bool = typer.Option(
        False,
        "--llm",
        help="Judge each question as kb serve does with the configured LLM (the model reads what the signals "
        "find weak; requests and tokens are reported). Default: the offline signals alone.",
    ),
) -> None:
    """Measure retrieval: recall@1/5/10 and MRR over FAQ questions or a JSONL golden set.

    Exit 3 when --min-recall is given and recall@k falls below it.
    """
    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format must be 'table' or 'json'")
    from pipeline.stages import evaluate as eval_stage

    st = state(ctx)
    target: Path | str | None = bundle
    if index is not None:
        from pipeline.index.postgres import is_postgres_url, refuse_password_flag

        if is_postgres_url(index):
            refuse_password_flag(index)
        target = index
    settings = st.settings()
    report = eval_stage.run(
        settings,
        st.workspace,
        reporter(ctx),
        bundle_path=target,
        questions=questions,
        k=k,
        holdout=holdout,
        conversations=conversations,
        llm=_eval_llm(settings) if use_llm else None,
    )
    if fmt == "json":
        data = report.to_json() | {"min_recall": min_recall}
        console.print_json(json.dumps(data))
    else:
        _print_table(report)
    if min_recall is not None and report.recall[k] < min_recall:
        err_console.print(
            f"Error: recall@{k} is {report.recall[k]:.3f}, below --min-recall {min_recall:.3f}.",
            style="bold red",
            markup=False,
        )
        raise typer.Exit(3)


def _print_table(report: Any) -> None:
    """The eval report as a table, then a few of the questions it missed."""
    from rich.table import Table

    table = Table(
        title=f"Retrieval on {getattr(report.bundle, 'name', report.bundle)}: {report.questions} questions ({report.golden})"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for cut, value in report.recall.items():
        table.add_row(f"recall@{cut}", f"{value:.3f}")
    table.add_row(f"MRR@{report.k}", f"{report.mrr:.3f}")
    if report.answerable_flagged is not None:
        table.add_row("answerable wrongly flagged uncertain", f"{report.answerable_flagged:.3f}")
        table.add_row(f"  of them with no answer in the top {report.k} either", str(report.flagged_unretrieved))
    if report.unanswerable_flagged is not None:
        table.add_row(f"unanswerable flagged uncertain ({report.unanswerable})", f"{report.unanswerable_flagged:.3f}")
    if report.judge == "llm":
        table.add_row("judged with the LLM: requests", str(report.llm_requests))
        table.add_row("  tokens in / out", f"{report.tokens_in} / {report.tokens_out}")
    for cut, value in report.conversation_recall.items():
        table.add_row(f"conversations ({report.conversations}): last-turn recall@{cut}", f"{value:.3f}")
    console.print(table)
    misses = [r.question for r in report.results if r.rank is None and not r.unanswerable]
    if misses:
        console.print(f"{len(misses)} question(s) not found in the top {report.k}, e.g.:", markup=False)
        for q in misses[:5]:
            console.print(f"  - {q}", markup=False)
