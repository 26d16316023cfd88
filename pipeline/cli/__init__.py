"""The ``kb`` command line: the only place that prints, parses argv or maps errors to exit codes.

Exit codes: 0 ok, 1 a KbError (``Error: ...`` then ``Hint: ...``), 2 usage, 3 ``kb check``
found errors. Any other exception is a bug and keeps its traceback.

Each command group lives in its own module and registers itself on ``app``; heavy libraries are
imported inside the commands (via stages and backends), so ``kb --help`` stays instant.
"""

from __future__ import annotations

import sys

import typer

# Command groups register themselves on `app` (pipeline.cli.root) when imported.
from pipeline.cli import (  # noqa: E402
    agent_cmd,  # noqa: E402,F401  agent
    atoms_cmd,  # noqa: E402,F401  new, check
    bundle_cmd,  # noqa: E402,F401  export, ask, eval
    change_cmd,  # noqa: E402,F401  change plan/apply/rollback
    chat_cmd,  # noqa: E402,F401  ask, chat
    distill_cmd,  # noqa: E402,F401  distill, cost
    embed_cmd,  # noqa: E402,F401  embed onnx
    gaps_cmd,  # noqa: E402,F401  gaps
    import_docs_cmd,  # noqa: E402,F401  import-docs
    interviews_cmd,  # noqa: E402,F401  add, transcribe, eval-diarisation
    jobs_cmd,  # noqa: E402,F401  worker, jobs status/watch/retry (kb run --via celery)
    mcp_cmd,  # noqa: E402,F401  mcp
    monitoring_cmd,  # noqa: E402,F401  monitoring dashboard
    ops_cmd,  # noqa: E402,F401  triage, ops
    review_cmd,  # noqa: E402,F401  review
    schemas_cmd,  # noqa: E402,F401  schemas write/add
    serve_cmd,  # noqa: E402,F401  serve
    setup_cmd,  # noqa: E402,F401  setup new/apply
    site_cmd,  # noqa: E402,F401  site
    tools_cmd,  # noqa: E402,F401  tools
    workspace_cmd,  # noqa: E402,F401  init, config, run
)
from pipeline.cli._common import err_console
from pipeline.cli.root import COMMAND_ORDER, app
from pipeline.errors import KbError


def print_error(exc: KbError) -> None:
    err_console.print(f"Error: {exc.message}", style="bold red", markup=False)
    if exc.hint:
        err_console.print(f"Hint: {exc.hint}", markup=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kb`` script; returns the exit code."""
    command = typer.main.get_command(app)
    for n, arg in enumerate(sys.argv[1:] if argv is None else argv, start=1):
        try:  # bytes that are not UTF-8 arrive as lone surrogates (PEP 383)
            arg.encode("utf-8")
        except UnicodeEncodeError:
            print_error(KbError(f"command-line argument {n} is not valid UTF-8 text: {arg.encode('utf-8', 'replace')!r}",
                                "Pass UTF-8 text (check the terminal's locale, e.g. LANG=C.UTF-8).",))  # fmt: skip
            return 1
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


__all__ = ["COMMAND_ORDER", "app", "main", "print_error"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
