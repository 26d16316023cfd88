"""The ``kb`` command line: the only place that prints, parses argv or maps errors to exit codes.

Exit codes: 0 ok, 1 a KbError (``Error: ...`` then ``Hint: ...``), 2 usage, 3 ``kb check``
found errors. Any other exception is a bug and keeps its traceback.

Each command group lives in its own module and registers itself on ``app``; heavy libraries are
imported inside the commands (via stages and backends), so ``kb --help`` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
import typer.core

from pipeline import __version__
from pipeline.cli._common import State, err_console
from pipeline.errors import KbError

#: The order ``kb --help`` lists commands in: the order a user meets them.
COMMAND_ORDER = (
    "init",
    "add",
    "transcribe",
    "import-docs",
    "distill",
    "new",
    "check",
    "site",
    "export",
    "eval",
    "ask",
    "serve",
    "run",
    "cost",
    "config",
    "schemas",
    "eval-diarisation",
)


class _OrderedGroup(typer.core.TyperGroup):
    def list_commands(self, ctx):  # type: ignore[no-untyped-def]
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


# Command groups register themselves on `app` when imported.
from pipeline.cli import (  # noqa: E402
    atoms_cmd,  # noqa: E402,F401  new, check
    bundle_cmd,  # noqa: E402,F401  export, ask, eval
    distill_cmd,  # noqa: E402,F401  distill, cost
    import_docs_cmd,  # noqa: E402,F401  import-docs
    interviews_cmd,  # noqa: E402,F401  add, transcribe, eval-diarisation
    monitoring_cmd,  # noqa: E402,F401  monitoring dashboard
    serve_cmd,  # noqa: E402,F401  serve
    site_cmd,  # noqa: E402,F401  site
    workspace_cmd,  # noqa: E402,F401  init, schemas, config, run
)


def print_error(exc: KbError) -> None:
    err_console.print(f"Error: {exc.message}", style="bold red", markup=False)
    if exc.hint:
        err_console.print(f"Hint: {exc.hint}", markup=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kb`` script; returns the exit code."""
    command = typer.main.get_command(app)
    try:
        # standalone mode: click prints usage errors (exit 2) and turns Exit into SystemExit.
        command.main(args=argv, prog_name="kb", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    except KbError as exc:
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("Interrupted; nothing half-written was left behind.")
        return 130
    except OSError as exc:  # the file system said no (a file where a folder belongs, permissions, disk full)
        if isinstance(exc, BrokenPipeError):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
        if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
            message = f"{exc.filename} is a file where kb needs a folder ({exc.strerror})"
        print_error(KbError(message, "Check that path: a folder where one is needed, permissions, free space."))
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
