"""The ``kb`` Typer app and its root options; command modules register on ``app`` from here.

(Command modules import ``pipeline.cli.root``, not the ``pipeline.cli`` package, so the package
can import them without an import circle.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
import typer.core

from pipeline import __version__
from pipeline.cli._common import State

#: The order ``kb --help`` lists commands in: the order a user meets them.
COMMAND_ORDER = (
    "init",
    "add",
    "transcribe",
    "import-docs",
    "distill",
    "new",
    "check",
    "review",
    "site",
    "export",
    "eval",
    "ask",
    "chat",
    "serve",
    "monitoring",
    "embed",
    "gaps",
    "triage",
    "ops",
    "agent",
    "mcp",
    "tools",
    "setup",
    "change",
    "run",
    "worker",
    "jobs",
    "cost",
    "config",
    "schemas",
    "eval-diarisation",
)


class _OrderedGroup(typer.core.TyperGroup):
    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))


app = typer.Typer(
    name="kb",
    cls=_OrderedGroup,
    help="Turn recorded expert interviews into a reviewed knowledge base and a cited chat endpoint.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kb {__version__}")
        raise typer.Exit()


#: Called with the --workspace value before every command (command modules register them).
ON_START: list[Callable[[Path | None], None]] = []


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Path | None = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar="KB_WORKSPACE",
        help="Workspace folder (default: the nearest folder up from here holding kb.yaml or mkdocs.yml).",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print results, warnings and errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    ctx.obj = State(workspace_arg=workspace, quiet=quiet)
    for hook in ON_START:  # e.g. a crash mid-apply of a change plan is finished or undone first
        hook(workspace)
