"""The bounded tool loop every specialist runs, over any OpenAI-compatible chat endpoint.

Bounds, all from ``Settings.agent``: at most ``max_tool_calls`` tool calls (then the model is told
to answer and gets no tools), at most ``max_requests`` LLM requests, each tool output cut to
``tool_output_tokens`` (the cut is said in the output), and the client's ``budget_usd`` checked
before every request. Everything sent is redacted first (``agent.redact``) and recorded, so
``--show-context`` prints exactly what the model saw. Only tools handed to the loop are callable,
and a tool is read-only or writes a proposal/plan under kb's own folders: nothing a loop can call
writes a user's files, and ``apply`` is never a tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from pipeline.agent.redact import Redactor
from pipeline.errors import BudgetExceededError, KbError
from pipeline.tools import registry
from pipeline.tools.registry import Tool, ToolContext

ANSWER_NOW = (
    "The tool budget for this request is used up. Answer now from what the tools returned; "
    "cite atoms as [atom-id] and log lines as file:line; say what you could not check."
)


class ToolCallRecord(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    ok: bool = True
    error: str | None = None
    truncated: bool = False
    effect: str = "read"


class Usage(BaseModel):
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


@dataclass
class LoopResult:
    text: str
    calls: list[ToolCallRecord] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # each successful tool output (JSON data)
    sent: list[list[dict[str, Any]]] = field(default_factory=list)  # every request's messages, as sent
    usage: Usage = field(default_factory=Usage)
    stopped: str | None = None  # why the loop stopped early: tool budget, request budget, artifact
    artifact: dict[str, Any] | None = None  # the first proposal/plan a proposal tool wrote
    redactions: int = 0


def clip_output(data: dict[str, Any], max_tokens: int) -> tuple[str, bool]:
    """The tool output as JSON text within ``max_tokens`` (about 4 characters a token); a cut says so."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    limit = max_tokens * 4
    if len(text) <= limit:
        return text, False
    return (
        text[:limit] + f"\n[output truncated: {limit} of {len(text)} characters shown; narrow the call "
        "(a smaller limit, a query, a handle) to see more]",
        True,
    )


def run_loop(
    client: Any,
    ctx: ToolContext,
    tools: list[Tool],
    messages: list[dict[str, Any]],
    *,
    stop_at_artifact: bool = False,
    observe: Any | None = None,
) -> LoopResult:
    """Run ``messages`` (system + user) with ``tools`` until the model answers or a bound is hit.

    ``client``: an ``LlmClient`` (``.complete(messages, tools=...)``). ``stop_at_artifact``: end as
    soon as a proposal tool has written its proposal or plan (setup and change specialists).
    ``observe(tool, result, seconds)``: per-tool metrics.
    """
    import time

    cfg = ctx.settings.agent
    for t in tools:
        if t.effect not in ("read", "proposal"):  # the registry allows no other; refuse anything else
            raise KbError(f"tool {t.name} has effect {t.effect!r}; agent loops call read or proposal tools only")
    allowed = {t.name: t for t in tools}
    redactor = Redactor.from_settings(ctx.settings)
    convo = list(messages)
    result = LoopResult(text="")
    schema = registry.openai_tools(tools)
    while True:
        budget_left = cfg.max_tool_calls - len(result.calls)
        last_request = result.usage.requests + 1 >= cfg.max_requests
        offer = schema if budget_left > 0 and not last_request and tools else None
        if offer is None and (budget_left <= 0 or last_request) and tools and result.calls:
            convo.append({"role": "system", "content": ANSWER_NOW})
            result.stopped = result.stopped or ("tool budget" if budget_left <= 0 else "request budget")
        sent = redactor.messages(convo)
        try:
            message, usage = client.complete(sent, tools=offer)
        except BudgetExceededError:
            result.stopped = "cost budget"
            break
        result.sent.append(sent)
        result.usage.requests += 1
        result.usage.tokens_in += usage.tokens_in
        result.usage.tokens_out += usage.tokens_out
        result.usage.cost_usd += usage.cost_usd
        calls = message.get("tool_calls") or []
        if not calls or offer is None:
            result.text = str(message.get("content") or "").strip()
            break
        convo.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
        for call in calls:
            fn = call.get("function") or {}
            name = str(fn.get("name") or "")
            if len(result.calls) >= cfg.max_tool_calls:
                convo.append({"role": "tool", "tool_call_id": call.get("id"), "content": "not run: " + ANSWER_NOW})
                result.stopped = "tool budget"
                continue
            record, content = _run_one(ctx, allowed, name, fn.get("arguments"), cfg.tool_output_tokens, observe, time)
            result.calls.append(record)
            if record.ok and content is not None:
                result.outputs.append({"tool": name, "output": content[1]})
                if record.effect == "proposal" and result.artifact is None:
                    result.artifact = {"tool": name, **content[1]}
            convo.append(
                {"role": "tool", "tool_call_id": call.get("id"), "content": content[0] if content else record.error}
            )
        if stop_at_artifact and result.artifact is not None:
            result.stopped = "artifact"
            result.text = str(message.get("content") or "").strip()
            break
    result.redactions = redactor.count
    return result


def _run_one(
    ctx: ToolContext, allowed: dict[str, Tool], name: str, raw_args: Any, max_tokens: int, observe: Any, time: Any
) -> tuple[ToolCallRecord, tuple[str, dict[str, Any]] | None]:
    try:
        args = json.loads(raw_args) if isinstance(raw_args, str) and raw_args.strip() else (raw_args or {})
    except json.JSONDecodeError as exc:
        return ToolCallRecord(name=name, ok=False, error=f"error: the arguments are not JSON ({exc.msg})"), None
    if not isinstance(args, dict):
        return ToolCallRecord(name=name, ok=False, error="error: the arguments must be a JSON object"), None
    t = allowed.get(name)
    if t is None:
        error = f"error: no tool {name!r} here; the tools are: {', '.join(sorted(allowed))}"
        return ToolCallRecord(name=name, arguments=args, ok=False, error=error), None
    started = time.perf_counter()
    try:
        data = t.run(ctx, args).model_dump(mode="json")
    except KbError as exc:
        if observe:
            observe(name, "error", time.perf_counter() - started)
        error = f"error: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else "")
        return ToolCallRecord(name=name, arguments=args, ok=False, error=error, effect=t.effect), None
    if observe:
        observe(name, "ok", time.perf_counter() - started)
    text, cut = clip_output(data, max_tokens)
    return ToolCallRecord(name=name, arguments=args, truncated=cut, effect=t.effect), (text, data)
