"""kb-agent: one structured call routes a request to a specialist, or asks back for what is missing.

The router sees only the (redacted) request and returns a typed ``Route``: the intent
(troubleshoot / setup / migrate / ask) and the information the specialist would need but the
request lacks. Missing information is asked back instead of guessed. Without an LLM a keyword
router picks the intent (said in the answer), so ``kb agent`` works offline for troubleshoot and ask.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipeline.agent import specialists
from pipeline.agent.answer import AgentAnswer
from pipeline.agent.loop import Usage
from pipeline.agent.redact import Redactor
from pipeline.tools.registry import ToolContext

Intent = Literal["troubleshoot", "setup", "migrate", "ask"]

ROUTER_PROMPT = """You route an administrator's or operator's request to one specialist:
- troubleshoot: something failed or misbehaves (errors, failed runs, logs, metrics); "why did X fail?"
- setup: a first working configuration for a product from a description of their situation
- migrate: the same change repeated over many existing config files or elements
- ask: a question about how things work, answered from the knowledge base
List in `missing` only information the specialist cannot work without and the request does not give (e.g. which
system failed, which files to change, what the target situation is), each as a short question to ask back.
Leave `missing` empty when the request is answerable as it is."""


class Route(BaseModel):
    intent: Intent
    missing: list[str] = Field(default_factory=list, description="Questions to ask back before a specialist can work.")
    system: str | None = Field(None, description="The system the request is about, when it names one.")
    reason: str = Field("", description="One sentence: why this intent.")


_KEYWORDS: list[tuple[Intent, re.Pattern[str]]] = [
    (
        "migrate",
        re.compile(r"\b(all|every|each|\d+)\b.*\b(change|rename|update|bump|replace|add|remove|set)\b|\bmigrat", re.I),
    ),
    (
        "setup",
        re.compile(
            r"\b(set ?up|install|bootstrap|initial config|get started|new (cluster|instance|deployment))\b", re.I
        ),
    ),
    (
        "troubleshoot",
        re.compile(
            r"\b(fail\w*|error\w*|crash\w*|broke\w*|down|timeout|timed out|exceeded|why did|not working)\b", re.I
        ),
    ),
]


_QUESTION = re.compile(r"^\s*(how|what|where|when|which|who|can|could|is|are|does|do|should)\b", re.I)


def keyword_route(request: str) -> Route:
    for intent, rx in _KEYWORDS:
        if intent == "troubleshoot" and _QUESTION.search(request):
            break  # "How do I restore after a node fails?" asks how things work
        if rx.search(request):
            return Route(intent=intent, reason="keyword routing (no LLM configured)")
    return Route(intent="ask", reason="keyword routing (no LLM configured)")


def route(client: Any, request: str, ctx: ToolContext) -> tuple[Route, Usage, list[dict[str, Any]]]:
    """One structured call: (the route, its usage, the messages the model saw)."""
    redactor = Redactor.from_settings(ctx.settings)
    messages = redactor.messages([{"role": "system", "content": ROUTER_PROMPT}, {"role": "user", "content": request}])
    decision, usage = client.extract(Route, messages)
    used = Usage(
        requests=usage.requests, tokens_in=usage.tokens_in, tokens_out=usage.tokens_out, cost_usd=usage.cost_usd
    )
    return decision, used, messages


def agent(ctx: ToolContext, request: str, *, client: Any | None = None, system: str | None = None) -> AgentAnswer:
    """Route ``request`` and hand it to the specialist; ``system`` overrides the routed one (troubleshoot)."""
    client = client or specialists.llm_client(ctx)
    seen: list[list[dict[str, Any]]] = []
    if client is None:
        decision, usage = keyword_route(request), Usage()
    else:
        decision, usage, messages = route(client, request, ctx)
        seen.append(messages)
    if decision.missing:
        answer = AgentAnswer(
            answer="Before I can help I need to know:\n" + "\n".join(f"- {q}" for q in decision.missing),
            uncertain=True,
            reason="the request lacks information the specialist needs",
            intent=decision.intent,
            ask_back=list(decision.missing),
            usage=usage,
        )
        return _with_context(answer, seen)
    target = system or decision.system or "kb"
    if decision.intent == "troubleshoot":
        answer = specialists.ops_ask(ctx, request, system=target, client=client)
    elif decision.intent == "ask":
        answer = specialists.ask(ctx, request, client)
    elif client is None:
        cmd = "kb setup new" if decision.intent == "setup" else "kb change plan"
        answer = AgentAnswer(
            answer=f"This is a {decision.intent} request. Without an LLM, run `{cmd}` with explicit values.",
            uncertain=True,
            reason=f"{decision.intent} needs an LLM inside kb agent",
            intent=decision.intent,
            mode="offline",
        )
    else:
        group = "setup" if decision.intent == "setup" else "change"
        answer = specialists.artifact_loop(ctx, request, group=group, intent=decision.intent, client=client)
    answer.intent = decision.intent
    answer.usage = Usage(
        requests=answer.usage.requests + usage.requests,
        tokens_in=answer.usage.tokens_in + usage.tokens_in,
        tokens_out=answer.usage.tokens_out + usage.tokens_out,
        cost_usd=answer.usage.cost_usd + usage.cost_usd,
    )
    if client is None:
        answer.mode = "offline"
    return _with_context(answer, seen)


def _with_context(answer: AgentAnswer, seen: list[list[dict[str, Any]]]) -> AgentAnswer:
    answer.context = seen + answer.context
    return answer
