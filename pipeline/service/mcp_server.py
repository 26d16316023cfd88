"""The MCP server, generated from the tool registry (the only importer of the ``mcp`` SDK).

Every registry tool becomes an MCP tool with the registry's input schema, its output model as the
output schema (so clients get ``structuredContent`` they can validate) and annotations saying what
it may do: ``readOnlyHint`` for read tools; proposal tools are not read-only but never destructive.
Resources: ``kb://atoms/{id}``, ``kb://bundle/manifest``, ``kb://interviews/{id}/transcript``.

Transports: stdio (``kb mcp``, desktop clients) and stateless streamable HTTP mounted at ``/mcp``
inside the FastAPI app (``kb serve --mcp``): stateless, so any serving process can answer any
request, and behind the app's bearer auth, body limit and metrics.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from pipeline.errors import KbError, MissingDependencyError
from pipeline.tools import registry
from pipeline.tools.registry import Tool, ToolContext

SERVER_NAME = "kb"
INSTRUCTIONS = (
    "kb answers from a reviewed knowledge base of expert interviews. Use `search` or `ask` first; every answer "
    "cites atoms and the expert's words (interview, speaker, second). `get_source` shows the transcript behind a "
    "citation; `find_error` maps an error message to the atom that says how to fix it. When `uncertain` is true, "
    "say so instead of guessing."
)

Contexts = Callable[[], AbstractContextManager[ToolContext]]


def _sdk() -> Any:
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise MissingDependencyError("mcp", "mcp", "the MCP server") from None
    from mcp.server import mcpserver

    return mcpserver


def tool_message(exc: KbError) -> str:
    return exc.message.rstrip(".") + "." + (f" Hint: {exc.hint}" if exc.hint else "")


def build_server(contexts: Contexts, *, observe: Callable[[str, str, float], None] | None = None) -> Any:
    """An ``MCPServer`` over the registry; ``contexts()`` yields the ToolContext for one call (a lease).

    ``observe(tool, result, seconds)``: per-tool metrics (result is ok | error).
    """
    _sdk()
    from mcp.server.mcpserver import MCPServer

    from pipeline import __version__

    tools = [_mcp_tool(t, contexts, observe) for t in registry.all_tools()]
    server = MCPServer(
        SERVER_NAME,
        title="kb knowledge base",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=tools,
        log_level="WARNING",
    )
    _add_resources(server, contexts)
    return server


def _mcp_tool(t: Tool, contexts: Contexts, observe: Callable[[str, str, float], None] | None) -> Any:
    from mcp.server.mcpserver.exceptions import ToolError as McpToolError
    from mcp.server.mcpserver.tools.base import Tool as McpTool
    from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
    from mcp_types import ToolAnnotations

    args_model = type(f"{t.name}_arguments", (t.input_model, ArgModelBase), {})

    def run(**kwargs: Any) -> Any:
        started, result = time.perf_counter(), "error"
        try:
            with contexts() as ctx:
                out = t.run(ctx, kwargs)
            result = "ok"
            return out
        except KbError as exc:
            raise McpToolError(tool_message(exc)) from None
        finally:
            if observe is not None:
                observe(t.name, result, time.perf_counter() - started)

    annotations = ToolAnnotations(
        title=t.title,
        read_only_hint=t.read_only,
        destructive_hint=False,
        idempotent_hint=t.read_only,
        open_world_hint=False,
    )
    return McpTool(
        fn=run,
        name=t.name,
        title=t.title,
        description=t.description,
        parameters=t.input_schema(),
        fn_metadata=FuncMetadata(arg_model=args_model, output_model=t.output_model),
        is_async=False,
        annotations=annotations,
        meta={"kb/effect": t.effect, "kb/group": t.group},
    )


def _add_resources(server: Any, contexts: Contexts) -> None:
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    from pipeline.tools.knowledge import atom_out, unknown

    @server.resource("kb://bundle/manifest", name="manifest", title="Bundle manifest", mime_type="application/json")
    def manifest() -> str:
        """The manifest of the bundle being served: version, checksum, embedding model, counts."""
        with contexts() as ctx:
            m = ctx.need_index().manifest
        return m.model_dump_json(indent=2)

    @server.resource("kb://atoms/{atom_id}", name="atom", title="Atom", mime_type="application/json")
    def atom(atom_id: str) -> str:
        """One atom as JSON (front matter, body, FAQ, sources, resolution steps)."""
        with contexts() as ctx:
            bundle = ctx.need_index()
            rec = bundle.atom(atom_id)
            if rec is None:
                err = unknown("atom id", atom_id, bundle.atom_ids, "the search tool")
                raise ResourceNotFoundError(tool_message(err))
            return atom_out(rec).model_dump_json(indent=2)

    @server.resource(
        "kb://interviews/{interview_id}/transcript",
        name="transcript",
        title="Cited transcript",
        mime_type="text/markdown",
    )
    def transcript(interview_id: str) -> str:
        """The interview's transcript segments that the bundle keeps (those citations point to, with context)."""
        with contexts() as ctx:
            bundle = ctx.need_index()
            if interview_id not in bundle.interviews():
                err = unknown("interview", interview_id, bundle.interviews(), "list_facets")
                raise ResourceNotFoundError(tool_message(err))
            return transcript_markdown(interview_id, bundle.segments(interview_id))


def transcript_markdown(interview_id: str, segments: list[dict[str, Any]]) -> str:
    from pipeline.textio import clock as timestamp

    lines = [
        f"# {interview_id}",
        "",
        "Segments cited by atoms (with one segment of context each side); gaps are elided.",
        "",
    ]
    previous = None
    for s in segments:
        if previous is not None and s["id"] != previous + 1:
            lines += ["[…]", ""]
        lines += [f"**[{timestamp(s['start'])}] {s['speaker_name']} ({s['role']}):** {s['text']}", ""]
        previous = s["id"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# transports


def fixed_contexts(ctx: ToolContext) -> Contexts:
    """One ToolContext for every call (stdio: the bundle loaded at start)."""

    @contextlib.contextmanager
    def contexts() -> Iterator[ToolContext]:
        yield ctx

    return contexts


def service_contexts(service: Any) -> Contexts:
    """Per call: a lease on the bundle being served (reloads swap it between calls), the service's
    LLM and calibrated threshold, so ``ask`` over MCP answers exactly as ``/v1/ask`` does."""
    from pipeline.service.core import _Gated

    @contextlib.contextmanager
    def contexts() -> Iterator[ToolContext]:
        with service.holder.lease() as live:
            calibration = live.extra.get("calibration")
            yield ToolContext(
                settings=service.settings,
                workspace=service.workspace,
                index=_Gated(live.bundle, service.gate),
                extras={"llm": service.llm, "threshold": calibration.threshold if calibration else None},
            )

    return contexts


def run_stdio(ctx: ToolContext) -> None:
    """``kb mcp``: serve the registry over stdin/stdout until the client closes it."""
    build_server(fixed_contexts(ctx)).run("stdio")


class HttpMount:
    """Stateless streamable HTTP for ``/mcp`` inside the FastAPI app; ``run()`` belongs in its lifespan."""

    def __init__(self, contexts: Contexts, *, host: str, observe: Callable[[str, str, float], None] | None = None):
        _sdk()
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings

        self.server = build_server(contexts, observe=observe)
        security = None
        if host in ("127.0.0.1", "localhost", "::1"):  # the SDK's DNS-rebinding protection for loopback
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "testserver"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        self.manager = StreamableHTTPSessionManager(
            app=self.server._lowlevel_server, json_response=True, stateless=True, security_settings=security
        )
        self.asgi = StreamableHTTPASGIApp(self.manager)

    def run(self) -> Any:
        return self.manager.run()


def client_config(client: str, command: list[str], url: str | None = None) -> dict[str, Any]:
    """The JSON a desktop client reads: Claude Desktop's ``claude_desktop_config.json`` or Cursor's ``mcp.json``."""
    if url is not None:
        entry: dict[str, Any] = {"url": url}
        if client == "claude":
            entry = {"type": "http", "url": url}
    else:
        entry = {"command": command[0], "args": command[1:]}
    return {"mcpServers": {SERVER_NAME: entry}}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2)
