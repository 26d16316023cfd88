"""``kb agent "<request>"``: route a request to the troubleshooting, setup, migration or ask specialist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from pipeline.cli._common import console, err_console
from pipeline.cli.root import app


@app.command("agent")
def agent_command(
    ctx: typer.Context,
    request: str = typer.Argument(..., help='e.g. "why did last night\'s export fail?" or "set 30 apps to auto-sync"'),
    system: str | None = typer.Option(
        None, "--system", "-s", help="The system a troubleshooting request is about (default: kb)."
    ),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
    show_context: bool = typer.Option(
        False, "--show-context", help="Print exactly what the model saw (after redaction)."
    ),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """One bounded agent: a router picks troubleshoot / setup / migrate / ask (or asks back for what is
    missing); the specialist stops at an answer, a proposal or a plan. Nothing is applied."""
    from pipeline.agent import agent
    from pipeline.cli.tools_cmd import context_inputs
    from pipeline.tools.context import open_context

    if fmt not in ("text", "json"):
        raise typer.BadParameter("--format must be 'text' or 'json'")
    if not request.strip():
        raise typer.BadParameter("the request is empty", param_hint="REQUEST")
    settings, path, workspace = context_inputs(ctx, bundle)
    tctx = open_context(settings, workspace, path)
    result = agent(tctx, request, system=system)
    emit(result, fmt, show_context)


def emit(result: Any, fmt: str, show_context: bool) -> None:
    """Print an AgentAnswer (kb agent, kb ops ask): the context first when asked, then the answer."""
    if show_context:
        err_console.print(render_context(result.context), markup=False, highlight=False, soft_wrap=True)
    if fmt == "json":
        data = result.model_dump(mode="json")
        if show_context:
            data["context"] = result.context
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    console.print(render(result), markup=False, highlight=False, soft_wrap=True)


def render(result: Any) -> str:
    from pipeline.answer import describe_source

    lines = [result.answer.strip(), ""]
    lines.append(
        f"Uncertain: {'YES' if result.uncertain else 'no'}" + (f"  ({result.reason})" if result.reason else "")
    )
    if result.intent:
        lines.append(f"Intent: {result.intent}  ({result.mode})")
    if result.citations:
        lines += ["", "Citations:"]
        for i, c in enumerate(result.citations, 1):
            draft = "  (draft)" if c["atom_id"] in result.drafts else ""
            lines.append(f"  {i}. {c['title']}  [{c['atom_id']}]{draft}")
            lines += [f"     - {describe_source(s)}" for s in c.get("sources", [])[:3]]
    if result.log_citations:
        lines += ["", "Log lines:"] + [f"  - {x}" for x in result.log_citations]
    if result.tool_calls or result.usage.requests:
        u = result.usage
        lines += ["", f"{len(result.tool_calls)} tool call(s), {u.requests} LLM request(s), {u.tokens_in} tokens in, "
                  f"{u.tokens_out} out, ${u.cost_usd:.4f}" + (f"; stopped at the {result.stopped}" if result.stopped else "")]  # fmt: skip
    return "\n".join(lines)


def render_context(context: list[list[dict[str, Any]]]) -> str:
    if not context:
        return "--- context: nothing was sent to an LLM ---"
    out = []
    for n, messages in enumerate(context, 1):
        out.append(f"--- request {n}: {len(messages)} message(s), as sent (redacted) ---")
        out += [json.dumps(m, ensure_ascii=False) for m in messages]
    return "\n".join(out)
