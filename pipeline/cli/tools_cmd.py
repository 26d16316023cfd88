"""``kb tools``: the tool registry from the terminal (the same tools MCP and the agents call)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipeline.cli._common import console, state
from pipeline.cli.root import app
from pipeline.errors import InputError

tools_app = typer.Typer(
    help="List and call the registry's tools (the ones MCP clients and the agents use).", no_args_is_help=True
)
app.add_typer(tools_app, name="tools")


@tools_app.command("list")
def list_tools(
    group: str | None = typer.Option(None, "--group", help="Only this group (knowledge, ops, setup, change)."),
    fmt: str = typer.Option("text", "--format", help="text, json (name, effect, schemas) or openai (tools=[...])."),
) -> None:
    """The tools: name, group, effect (read or proposal) and what each does."""
    from pipeline.tools import registry

    if fmt not in ("text", "json", "openai"):
        raise typer.BadParameter("--format must be text, json or openai")
    tools = registry.all_tools(group)
    if fmt == "openai":
        console.print_json(json.dumps(registry.openai_tools(tools)))
        return
    if fmt == "json":
        data = [
            {
                "name": t.name,
                "group": t.group,
                "effect": t.effect,
                "description": t.description,
                "input_schema": t.input_schema(),
                "output_schema": t.output_schema(),
            }
            for t in tools
        ]
        console.print_json(json.dumps(data))
        return
    width = max((len(t.name) for t in tools), default=4)
    for t in tools:
        console.print(f"{t.name:<{width}}  {t.group:<9}  {t.effect:<8}  {t.description}", markup=False, soft_wrap=True)


@tools_app.command("call")
def call_tool(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Tool name (kb tools list)."),
    arguments: str = typer.Option(
        "{}", "--json", help='The arguments as a JSON object, e.g. \'{"query": "sync timeout"}\'.'
    ),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
) -> None:
    """Call one tool with JSON arguments and print its JSON output."""
    from pipeline.tools import registry
    from pipeline.tools.context import open_context

    try:
        args = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--json is not valid JSON ({exc.msg} at position {exc.pos})", "Pass one JSON object, in single quotes."
        ) from None
    if not isinstance(args, dict):
        raise InputError("--json must be a JSON object", 'e.g. --json \'{"query": "sync timeout"}\'')
    tool = registry.get(name)
    settings, path, workspace = context_inputs(ctx, bundle)
    tctx = open_context(settings, workspace, path)
    console.print_json(json.dumps(tool.run(tctx, args).model_dump(mode="json")))


def context_inputs(ctx: typer.Context, bundle: Path | None, *, need_bundle: bool = False):
    """(settings, bundle path or None, workspace or None) for a tool context from the CLI's options."""
    from pipeline.cli._common import limit_native_threads
    from pipeline.config import Settings
    from pipeline.errors import BundleError, KbError
    from pipeline.service.reload import resolve_bundle

    st = state(ctx)
    try:
        ws = st.workspace
    except KbError:
        ws = None
    settings = Settings.load(ws.root if ws else None)
    limit_native_threads(settings.threads)
    path = None
    if bundle is not None:
        path = resolve_bundle(bundle)
    elif ws is not None:
        try:
            path = resolve_bundle(ws.dist_dir)
        except BundleError:
            if need_bundle:
                raise
    elif need_bundle:
        raise BundleError(
            "No --bundle given and no workspace here to find dist/kb-*.duckdb in.",
            "Pass --bundle PATH, or run from a workspace after 'kb export'.",
        )
    return settings, path, ws
