"""The system tools (group ``ops``): read-only views of the system the knowledge is about, and triage.

Each takes the system's name (``systems/<name>.yaml``, or ``kb`` for kb itself) and returns
within the output budget ``ops.tool_output_chars``; a cut result says so and carries a handle,
an offset or a note on how to fetch more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pipeline.errors import KbError
from pipeline.tools.registry import ToolContext, ToolError, tool


class _System(BaseModel):
    system: str = Field("kb", description="The system: a systems/<name>.yaml name, or 'kb' (kb itself).")


@contextmanager
def _as_tool_error() -> Iterator[None]:
    try:
        yield
    except ToolError:
        raise
    except KbError as exc:
        raise ToolError(exc.message, hint=exc.hint) from None


def _manifest(ctx: ToolContext, name: str) -> tuple[Path, Any]:
    from pipeline.ops.manifest import load_system

    root = Path(ctx.need_workspace().root)
    return root, load_system(root, name, ctx.settings.ops.max_manifest_bytes)


class SearchLogsIn(_System):
    query: str = Field("", description="Substring (case-insensitive) or /regex/; empty: every line.")
    since: str | None = Field(None, description="Only newer lines: 24h, 30m, 7d or an ISO time.")
    level: str | None = Field(None, description="Minimum level: error, warning, info.")
    limit: int = Field(50, ge=1, le=500)


class LogHit(BaseModel):
    file: str
    line_number: int
    time: str | None
    level: str | None
    line: str
    handle: str = Field(description="Pass to log_context for the lines around it.")


class SearchLogsOut(BaseModel):
    system: str
    hits: list[LogHit]
    truncated: bool
    note: str = ""


@tool("search_logs", input=SearchLogsIn, output=SearchLogsOut, group="ops", title="Search the system's logs")
def search_logs_tool(ctx: ToolContext, args: SearchLogsIn) -> SearchLogsOut:
    """Lines of a system's logs that match a query, newest files last, each with a handle for log_context."""
    from pipeline.ops import parse_since
    from pipeline.ops.sources import search_logs

    with _as_tool_error():
        root, m = _manifest(ctx, args.system)
        out = search_logs(root, m, query=args.query, since=parse_since(args.since), level=args.level,
                          limit=args.limit, budget_chars=ctx.settings.ops.tool_output_chars)  # fmt: skip
    return SearchLogsOut.model_validate(out)


class LogContextIn(_System):
    handle: str = Field(description="A handle from search_logs.")
    before: int = Field(10, ge=0, le=500)
    after: int = Field(10, ge=0, le=500)


class LogLine(BaseModel):
    line_number: int
    line: str


class LogContextOut(BaseModel):
    file: str
    lines: list[LogLine]
    truncated: bool
    next_handle: str | None = None


@tool("log_context", input=LogContextIn, output=LogContextOut, group="ops", title="Lines around a log line")
def log_context_tool(ctx: ToolContext, args: LogContextIn) -> LogContextOut:
    """The lines before and after a search_logs hit (a cut result gives the handle to continue from)."""
    from pipeline.ops.sources import log_context

    with _as_tool_error():
        root, m = _manifest(ctx, args.system)
        out = log_context(root, m, args.handle, before=args.before, after=args.after,
                          budget_chars=ctx.settings.ops.tool_output_chars)  # fmt: skip
    return LogContextOut.model_validate(out)


class QueryMetricIn(_System):
    name: str = Field(description="A named query of the system's manifest.")
    range: str = Field("1h", description="How far back: 15m, 1h, 24h, 7d.")


class QueryMetricOut(BaseModel):
    name: str
    query: str
    range: str
    status: str | None
    series: list[dict[str, Any]]
    truncated: bool


@tool("query_metric", input=QueryMetricIn, output=QueryMetricOut, group="ops", title="Query a named metric")
def query_metric_tool(ctx: ToolContext, args: QueryMetricIn) -> QueryMetricOut:
    """A named PromQL query of the system over a time range (Prometheus HTTP API)."""
    from pipeline.ops.sources import query_metric

    with _as_tool_error():
        _, m = _manifest(ctx, args.system)
        out = query_metric(m, args.name, args.range, timeout=ctx.settings.ops.http_timeout,
                           budget_chars=ctx.settings.ops.tool_output_chars)  # fmt: skip
    return QueryMetricOut.model_validate(out)


class QueryRecordsIn(_System):
    name: str = Field(description="A named SQL query of the system's manifest.")
    params: dict[str, Any] = Field(default_factory=dict, description="The query's named parameters.")


class QueryRecordsOut(BaseModel):
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    note: str = ""


@tool("query_records", input=QueryRecordsIn, output=QueryRecordsOut, group="ops", title="Query run records")
def query_records_tool(ctx: ToolContext, args: QueryRecordsIn) -> QueryRecordsOut:
    """A named, parameterised SELECT over the system's run records (read-only)."""
    from pipeline.ops.sources import query_records

    with _as_tool_error():
        root, m = _manifest(ctx, args.system)
        out = query_records(root, m, args.name, args.params, budget_chars=ctx.settings.ops.tool_output_chars)
    return QueryRecordsOut.model_validate(out)


class ReadConfigIn(_System):
    path: str = Field(".", description="A file or folder inside one of the system's config folders.")
    offset: int = Field(0, ge=0, description="Character offset to continue a cut file from.")


class ReadConfigOut(BaseModel):
    config: str
    path: str
    text: str | None = None
    entries: list[str] | None = None
    truncated: bool
    next_offset: int | None = None


@tool("read_config", input=ReadConfigIn, output=ReadConfigOut, group="ops", title="Read a config file")
def read_config_tool(ctx: ToolContext, args: ReadConfigIn) -> ReadConfigOut:
    """A file, or a folder's listing, from the system's declared config folders."""
    from pipeline.ops.sources import read_config

    with _as_tool_error():
        root, m = _manifest(ctx, args.system)
        out = read_config(root, m, args.path, offset=args.offset, budget_chars=ctx.settings.ops.tool_output_chars)
    return ReadConfigOut.model_validate(out)


class TriageIn(_System):
    since: str | None = Field("24h", description="Only lines newer than this (24h, 7d, an ISO time); null: all.")
    log: str | None = Field(None, description="A pasted log to triage instead of the system's logs.")
    max_groups: int = Field(10, ge=1, le=100)


class TriageAtom(BaseModel):
    atom_id: str
    title: str
    status: str
    score: float
    match: str
    resolution: list[str]
    citations: list[dict[str, Any]]


class TriageGroup(BaseModel):
    fingerprint: str
    file: str
    line: str
    line_number: int
    count: int
    first_seen: str | None
    last_seen: str | None
    level: str
    atoms: list[TriageAtom]
    uncovered: bool


class TriageOut(BaseModel):
    groups: list[TriageGroup]
    summary: dict[str, Any]


@tool("triage", input=TriageIn, output=TriageOut, group="ops", title="Triage the system's errors")
def triage_tool(ctx: ToolContext, args: TriageIn) -> TriageOut:
    """Error groups of the system's logs (or a pasted log) by template, each with the atoms that
    say how to fix it, or marked uncovered."""
    from pipeline.ops import catalog_for, parse_since, scan_system, triage_text

    with _as_tool_error():
        root = Path(ctx.workspace.root) if ctx.workspace is not None else None
        catalog = catalog_for(root, ctx.index)
        if args.log is not None:
            if len(args.log.encode()) > ctx.settings.ops.max_triage_bytes:
                raise ToolError("the pasted log is over ops.max_triage_bytes", hint="paste the part around the failure")
            result = triage_text(args.log, catalog)
        else:
            root, _ = _manifest(ctx, args.system)
            result = scan_system(root, args.system, catalog, since=parse_since(args.since))
    data = result.to_dict(max_groups=args.max_groups)
    text = TriageOut.model_validate(data)
    # the output budget: drop the lowest groups until it fits, and say so
    budget = ctx.settings.ops.tool_output_chars * 2
    while len(text.model_dump_json()) > budget and len(text.groups) > 1:
        text.groups.pop()
        text.summary.setdefault("truncated", []).append("a group was dropped to fit the output budget")
    return text
