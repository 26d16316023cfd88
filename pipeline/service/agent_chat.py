"""``/v1/chat/completions`` with ``model: "kb-ops"`` or ``"kb-agent"``: the agents behind the chat API.

The last user message is the request; ``system`` (an extra request field) names the system for
kb-ops (default ``kb``). The reply carries, beside ``citations`` and ``uncertain``, the log lines
cited, the drafts relied on, the routed intent, what to ask back, the artifact written (never
applied) and the tool calls made.
"""

from __future__ import annotations

from typing import Any


def agent_reply(service: Any, model: str, request: str, extra: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from pipeline.agent import agent, ops_ask
    from pipeline.errors import BackendError, BudgetExceededError, ConfigError, MissingDependencyError
    from pipeline.service.core import ApiError
    from pipeline.service.mcp_server import service_contexts

    service.check_text(request, "messages")
    system = extra.get("system")
    if system is not None and not isinstance(system, str):
        raise ApiError(422, "'system' must be a system name (a string).", "invalid_request_error")
    with service_contexts(service)() as ctx:
        ctx.extras["observe"] = service.metrics.observe_tool_for("agent")
        try:
            if model == "kb-ops":
                result = ops_ask(ctx, request, system=system or "kb")
            else:
                result = agent(ctx, request, system=system)
        except BudgetExceededError as exc:
            raise ApiError(429, f"The agent stopped at its budget: {exc.message}", "budget_exceeded") from None
        except (BackendError, ConfigError, MissingDependencyError) as exc:
            raise ApiError(502, f"The LLM failed: {exc.message}", "llm_error") from None
    data = result.model_dump(mode="json")
    out = {
        k: data[k]
        for k in ("log_citations", "drafts", "intent", "ask_back", "artifact", "tool_calls", "stopped", "reason")
    }
    return result, out
