"""``kb mcp``: the knowledge base as an MCP server over stdio, and the client configuration for it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer

from pipeline.cli._common import console
from pipeline.cli.root import app

mcp_app = typer.Typer(
    help="Serve the knowledge base to MCP clients (Claude Desktop, Cursor, IDEs) over stdio; 'kb mcp config' prints their setup.",
    invoke_without_command=True,
)
app.add_typer(mcp_app, name="mcp")


@mcp_app.callback()
def mcp(
    ctx: typer.Context,
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
) -> None:
    """Run the MCP server on stdin/stdout (what a desktop client launches). Over HTTP: kb serve --mcp."""
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.cli.tools_cmd import context_inputs
    from pipeline.service.mcp_server import run_stdio
    from pipeline.tools.context import open_context

    settings, path, workspace = context_inputs(ctx, bundle, need_bundle=True)
    run_stdio(open_context(settings, workspace, path))


@mcp_app.command("config")
def config(
    ctx: typer.Context,
    client: str = typer.Option("claude", "--client", help="claude (Claude Desktop / Claude Code) or cursor."),
    url: str | None = typer.Option(
        None, "--url", help="Point the client at a running 'kb serve --mcp' (http://HOST:PORT/mcp) instead of stdio."
    ),
) -> None:
    """Print the JSON to paste into the client's MCP configuration."""
    from pipeline.cli._common import state
    from pipeline.errors import KbError
    from pipeline.service.mcp_server import client_config, dumps

    if client not in ("claude", "cursor"):
        raise typer.BadParameter("--client must be 'claude' or 'cursor'")
    kb = shutil.which("kb") or str(Path(sys.executable).with_name("kb"))
    command = [kb]
    try:
        command += ["--workspace", str(state(ctx).workspace.root)]
    except KbError:
        pass
    command.append("mcp")
    console.print(dumps(client_config(client, command, url)), markup=False, soft_wrap=True)
    where = {
        "claude": "Claude Desktop: claude_desktop_config.json (Settings > Developer > Edit Config); Claude Code: .mcp.json",
        "cursor": "Cursor: ~/.cursor/mcp.json or .cursor/mcp.json in the project",
    }[client]
    from pipeline.cli._common import err_console

    err_console.print(f"Paste into {where}.", markup=False)
