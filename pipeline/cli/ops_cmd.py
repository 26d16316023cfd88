"""Operator commands: ``kb triage FILE|-``, ``kb ops scan --system NAME``, ``kb ops ask``, ``kb ops systems``."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from pipeline.cli._common import console, err_console, state
from pipeline.cli.root import app

ops_app = typer.Typer(
    help="Troubleshoot the system the knowledge is about: scan its logs, ask why it failed.", no_args_is_help=True
)
app.add_typer(ops_app, name="ops")

#: Files at least this big get a progress bar (on a terminal, unless --quiet).
PROGRESS_FROM_BYTES = 8 << 20


class OutFormat(StrEnum):
    human = "human"
    json = "json"


def _catalog(ctx: typer.Context, bundle: Path | None) -> Any:
    from pipeline.ops import catalog_for

    st = state(ctx)
    if bundle is None:
        return catalog_for(st.workspace.root)
    from functools import partial

    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import Bundle

    settings = st.settings()
    return catalog_for(st.workspace.root, Bundle.load(bundle, partial(embedder_for_manifest, settings=settings)))


@contextmanager
def _progress(ctx: typer.Context, total: int, force: bool = False):
    """A byte progress bar on stderr for big inputs; yields the callback (or None)."""
    if state(ctx).quiet or (total < PROGRESS_FROM_BYTES and not force):
        yield None
        return
    if not err_console.is_terminal:  # a CI log: one line per tenth instead of a live bar
        done, shown = [0], [-1]

        def step(n: int) -> None:
            done[0] += n
            tenth = min(10, done[0] * 10 // max(1, total))
            if tenth > shown[0]:
                shown[0] = tenth
                err_console.print(
                    f"scanning: {tenth * 10}% ({done[0] / 1e6:.1f} of {total / 1e6:.1f} MB)", markup=False
                )

        yield step
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("scanning", total=total)
        yield lambda n: bar.advance(task, n)


def _record_gaps(ctx: typer.Context, settings: Any, result: Any) -> None:
    """The errors no atom covers go to the gap log (``kb gaps``; off with ``gaps.record: false``).

    A busy or broken gap log is a warning: the triage is what the operator asked for.
    """
    if not settings.gaps.record or not result.uncovered_errors:
        return
    from pipeline.errors import KbError
    from pipeline.ops import record_uncovered

    st = state(ctx)
    try:
        n = record_uncovered(st.workspace.state_dir, result, settings)
    except KbError as exc:
        err_console.print(f"Warning: the uncovered errors were not recorded as gaps: {exc.message}", markup=False)
        return
    if n and not st.quiet:
        err_console.print(f"recorded {n} uncovered error(s) in the gap log (kb gaps)", markup=False)


def _emit(result: Any, fmt: OutFormat, max_groups: int, exit_code: bool) -> None:
    from pipeline.ops.render import render_report

    if fmt == OutFormat.json:
        typer.echo(json.dumps(result.to_dict(max_groups=max_groups), indent=2, ensure_ascii=False))
    else:
        for line in render_report(result, max_groups=max_groups):
            console.print(line, markup=False, highlight=False)
    if exit_code and result.uncovered_errors:
        raise typer.Exit(3)


@app.command()
def triage(
    ctx: typer.Context,
    files: list[str] = typer.Argument(..., metavar="FILE|-", help="Log files, or - to read a pasted log from stdin."),
    output_format: OutFormat = typer.Option(OutFormat.human, "--format", "-f", help="human or json."),
    since: str | None = typer.Option(None, "--since", help="Only lines newer than this: 24h, 30m, 7d or an ISO time."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 3 when an error group is covered by no atom."),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Link to a bundle's atoms (default: the workspace's atoms/)."
    ),
    max_groups: int | None = typer.Option(
        None, "--max-groups", min=1, help="Groups to show (default: ops.max_groups)."
    ),
    progress: bool = typer.Option(False, "--progress", help="Show a progress bar even for small files."),
) -> None:
    """Group a log's errors by template and link each group to the atoms that say how to fix it."""
    from pipeline.errors import NotFoundError
    from pipeline.ops import parse_since
    from pipeline.ops.triage import Scanner, iter_lines

    st = state(ctx)
    settings = st.settings()
    catalog = _catalog(ctx, bundle)
    scanner = Scanner(since=parse_since(since))
    for name in files:
        if name == "-":
            scanner.feed(iter_lines(sys.stdin.buffer), "-")
            continue
        path = Path(name)
        if not path.is_file():
            raise NotFoundError(f"{name} is not a file", "pass log files, or - to read from stdin")
        with _progress(ctx, path.stat().st_size, progress) as cb:
            scanner.scan_file(path, name, cb)
    result = scanner.result(catalog)
    _record_gaps(ctx, settings, result)
    _emit(result, output_format, max_groups or settings.ops.max_groups, exit_code)


@ops_app.command("scan")
def scan(
    ctx: typer.Context,
    system: str = typer.Option(..., "--system", "-s", help="A systems/<name>.yaml (or 'kb': kb itself)."),
    since: str | None = typer.Option(
        "24h", "--since", help="Only lines newer than this (24h, 7d, an ISO time; '' for all)."
    ),
    output_format: OutFormat = typer.Option(OutFormat.human, "--format", "-f", help="human or json."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 3 when an error group is covered by no atom."),
    bundle: Path | None = typer.Option(None, "--bundle", "-b", help="Link to a bundle's atoms (default: atoms/)."),
    max_groups: int | None = typer.Option(
        None, "--max-groups", min=1, help="Groups to show (default: ops.max_groups)."
    ),
) -> None:
    """Triage a system's declared logs: error groups, the atoms that cover them, and what is uncovered."""
    from pipeline.ops import parse_since, scan_system

    st = state(ctx)
    settings = st.settings()
    catalog = _catalog(ctx, bundle)
    result = scan_system(st.workspace.root, system, catalog, since=parse_since(since or None),
                         max_manifest_bytes=settings.ops.max_manifest_bytes)  # fmt: skip
    _record_gaps(ctx, settings, result)
    _emit(result, output_format, max_groups or settings.ops.max_groups, exit_code)


@ops_app.command("ask")
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help='e.g. "why did last night\'s sync fail?"'),
    system: str = typer.Option("kb", "--system", "-s", help="The system to look at (default: kb itself)."),
    since: str | None = typer.Option("24h", "--since", help="How far back to look."),
    output_format: OutFormat = typer.Option(OutFormat.human, "--format", "-f", help="human or json."),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle to link to and search (default: atoms/; with an LLM: dist/'s newest)."
    ),
    show_context: bool = typer.Option(
        False, "--show-context", help="Print exactly what the model saw (the tool calls and their outputs, redacted)."
    ),
) -> None:
    """Ask why the system failed. With an LLM: a bounded tool loop over the system's logs, metrics and
    records and the knowledge base. Without one: the triage, cited and marked uncertain where no atom
    covers an error."""
    from pipeline.answer import llm_configured

    st = state(ctx)
    settings = st.settings()
    if llm_configured(settings):
        _ask_agent(ctx, question, system, since, output_format, bundle, show_context)
        return
    from pipeline.ops import answer_offline, parse_since, scan_system

    catalog = _catalog(ctx, bundle)
    result = scan_system(st.workspace.root, system, catalog, since=parse_since(since or None),
                         max_manifest_bytes=settings.ops.max_manifest_bytes)  # fmt: skip
    _record_gaps(ctx, settings, result)
    out = answer_offline(question, system, None, settings, st.workspace.root, result=result)
    if show_context:
        err_console.print("--- context: nothing was sent to an LLM (no LLM configured: the deterministic triage) ---",
                          markup=False)  # fmt: skip
    if output_format == OutFormat.json:
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    console.print(out["answer"], markup=False, highlight=False)
    if out["uncertain"]:
        console.print("uncertain: an error here is covered by no atom", markup=False)


def _ask_agent(
    ctx: typer.Context,
    question: str,
    system: str,
    since: str | None,
    output_format: OutFormat,
    bundle: Path | None,
    show_context: bool,
) -> None:
    """kb-ops with an LLM: the bounded loop of ``pipeline.agent.ops_ask`` (the same one as chat model kb-ops)."""
    from pipeline.agent import ops_ask
    from pipeline.cli.agent_cmd import emit
    from pipeline.cli.tools_cmd import context_inputs
    from pipeline.tools.context import open_context

    settings, path, workspace = context_inputs(ctx, bundle)
    tctx = open_context(settings, workspace, path)
    result = ops_ask(tctx, question, system=system, since=since or None)
    emit(result, "json" if output_format == OutFormat.json else "text", show_context)


@ops_app.command("systems")
def systems(ctx: typer.Context) -> None:
    """List the systems this workspace can look at (systems/*.yaml, plus kb itself)."""
    from pipeline.ops.manifest import load_system, manifest_paths

    st = state(ctx)
    names = [p.stem for p in manifest_paths(st.workspace.root)]
    for name in names + ([] if "kb" in names else ["kb"]):
        m = load_system(st.workspace.root, name)
        kinds = [
            k
            for k, v in (("logs", m.logs), ("metrics", m.metrics), ("records", m.records), ("configs", m.configs))
            if v
        ]
        console.print(f"{name:20} {', '.join(kinds) or 'no sources':32} {m.description}", markup=False)
