"""The specialists: kb-ops (troubleshooting), setup, migrate (change plans) and ask.

Each one is a bounded tool loop (``loop.run_loop``) over the registry group it owns plus the
knowledge tools. Setup and migrate stop at an artifact: the proposal or the change plan their
tool wrote under ``proposals/`` or ``plans/``; a person applies it (``kb setup apply``,
``kb change apply``), never a loop. Without an LLM, kb-ops renders the deterministic triage
(``pipeline.ops.answer_offline``) and ask answers extractively.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.agent.answer import AgentAnswer, atom_citations, grounded
from pipeline.agent.loop import run_loop
from pipeline.errors import KbError
from pipeline.tools import registry
from pipeline.tools.registry import Tool, ToolContext

RULES = """Rules:
- Use only what the tools return. Cite every claim: atoms as [atom-id], log lines as file:line.
- When no atom covers an error or a value, say so plainly: that part is uncertain.
- When an atom you rely on has status draft, say it is a draft.
- Be brief."""

OPS_PROMPT = (
    """You are kb-ops, the troubleshooting assistant for the system '{system}'. You can read its logs, metrics,
run records and config folders (read-only) and search the knowledge base of expert atoms.
Find what failed with the system tools (triage first, then search_logs and log_context), then the error atom that
says how to fix it (find_error, search, get_atom). Say what failed, how often and when, and what the expert says to do.
"""
    + RULES
)

SETUP_PROMPT = (
    """You are the setup specialist. Turn the administrator's description into a setup proposal: find the
config-template, interface-input and procedure atoms (search, get_atom), then call the setup tool once with what you
found. The proposal is written under proposals/ for a person to review and apply; you never apply anything.
"""
    + RULES
)

CHANGE_PROMPT = (
    """You are the migration specialist. Turn the administrator's request into one change plan: find what the
knowledge base says about the change (search, get_atom), then call the change-plan tool once. The plan is written under
plans/ with a diff for a person to review and apply; you never apply anything.
"""
    + RULES
)

ASK_GROUP = "knowledge"


def knowledge_tools() -> list[Tool]:
    return registry.all_tools("knowledge")


def group_tools(group: str) -> list[Tool]:
    return registry.all_tools(group) + knowledge_tools()


def llm_client(ctx: ToolContext) -> Any | None:
    """An LLM client for a loop (budget: ``agent.max_cost_usd``), or None without an LLM configured."""
    from pipeline.answer import llm_configured

    given = ctx.extras.get("agent_llm")
    if given is not None:
        return given
    if not llm_configured(ctx.settings):
        return None
    from pipeline.backends.llm import make_client

    return make_client(ctx.settings, budget_usd=ctx.settings.agent.max_cost_usd)


def ops_ask(
    ctx: ToolContext, question: str, *, system: str = "kb", since: str | None = "24h", client: Any | None = None
) -> AgentAnswer:
    """kb-ops: why did the system fail? A tool loop with an LLM; the rendered triage without one."""
    client = client or llm_client(ctx)
    if client is None:
        return ops_offline(ctx, question, system=system, since=since)
    tools = group_tools("ops")
    messages = [
        {"role": "system", "content": OPS_PROMPT.format(system=system)},
        {"role": "user", "content": f"{question}\n\n(system: {system}; look back: {since or 'all'})"},
    ]
    result = run_loop(client, ctx, tools, messages, observe=ctx.extras.get("observe"))
    return grounded(result, ctx.index, intent="troubleshoot")


def ops_offline(ctx: ToolContext, question: str, *, system: str = "kb", since: str | None = "24h") -> AgentAnswer:
    try:
        from pipeline.ops import answer_offline
    except ImportError:
        raise KbError(
            "kb ops ask without an LLM renders the deterministic triage (pipeline.ops.answer_offline), "
            "which this kb does not have yet",
            hint="configure an LLM (llm.base_url or the key in llm.api_key_env), or use a kb with the ops triage",
        ) from None
    root = getattr(ctx.workspace, "root", None)
    out = answer_offline(question, system, ctx.index, ctx.settings, root, since=since)
    cites = [c for c in out.get("citations", []) if "atom_id" in c]
    logs = [str(c["log"]) for c in out.get("citations", []) if "log" in c]
    return AgentAnswer(
        answer=out["answer"],
        uncertain=bool(out.get("uncertain")),
        reason="an error is covered by no atom, or nothing was found" if out.get("uncertain") else "",
        citations=cites,
        log_citations=logs,
        drafts=list(out.get("drafts") or []),
        intent="troubleshoot",
        mode="offline",
    )


def artifact_loop(ctx: ToolContext, request: str, *, group: str, intent: str, client: Any) -> AgentAnswer:
    """Setup or migrate: a loop over the group's proposal tool and the knowledge tools, stopping at the artifact."""
    own = registry.all_tools(group)
    if not own:
        missing = {"setup": "setup_new (pipeline/setup)", "change": "change_plan (pipeline/change)"}[group]
        return AgentAnswer(
            answer=f"I cannot {intent} here: no {group} tool is registered (missing: {missing}).",
            uncertain=True,
            reason=f"no tool in registry group {group!r}",
            intent=intent,
        )
    prompt = SETUP_PROMPT if group == "setup" else CHANGE_PROMPT
    messages = [{"role": "system", "content": prompt}, {"role": "user", "content": request}]
    result = run_loop(
        client, ctx, own + knowledge_tools(), messages, stop_at_artifact=True, observe=ctx.extras.get("observe")
    )
    answer = grounded(result, ctx.index, intent=intent)
    if result.artifact is not None:
        art = result.artifact
        where = art.get("folder") or art.get("path") or art.get("id") or art.get("tool")
        answer.answer = (answer.answer + "\n\n" if result.text else "") + (
            f"Wrote {where} for review; nothing was applied. Apply it yourself after reading it "
            f"({'kb setup apply' if group == 'setup' else 'kb change apply'})."
        )
        if not answer.citations and not answer.log_citations:
            answer.citations, answer.drafts = atom_citations(ctx.index, _artifact_atoms(result.artifact, ctx.index))
        answer.uncertain = not answer.citations or answer.stopped in ("tool budget", "request budget")
        answer.reason = "" if not answer.uncertain else (answer.reason or "the artifact cites no atom")
    return answer


def _artifact_atoms(artifact: dict[str, Any], index: Any) -> list[str]:
    """Atoms the artifact cites: ``atom_id``/``atom`` fields, or known atom ids in its text (EXPLAIN.md)."""
    from pipeline.agent.answer import _walk

    ids = []
    for d in _walk(artifact):
        for key in ("atom_id", "atom"):
            if isinstance(d.get(key), str):
                ids.append(d[key])
    text = json.dumps(artifact, ensure_ascii=False)
    ids += [a for a in (getattr(index, "atom_ids", None) or []) if a in text]
    return list(dict.fromkeys(ids))


class RedactingChat:
    """An LLM client whose ``chat`` messages are redacted first (answering's LLM path)."""

    def __init__(self, client: Any, redactor: Any) -> None:
        self.client, self.redactor = client, redactor
        self.sent: list[list[dict[str, Any]]] = []

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        clean = self.redactor.messages(messages)
        self.sent.append(clean)
        return self.client.chat(clean, **kwargs)


def ask(ctx: ToolContext, question: str, client: Any | None = None) -> AgentAnswer:
    """Today's answering, as the ask specialist: the ``ask`` tool (LLM-grounded when configured),
    with the question and the atoms redacted before they reach the LLM."""
    import dataclasses

    from pipeline.agent.redact import Redactor

    chat = ctx.extras.get("llm") or client or llm_client(ctx)
    redactor = Redactor.from_settings(ctx.settings)
    wrapped = RedactingChat(chat, redactor) if chat is not None else None
    ctx = dataclasses.replace(ctx, extras={**ctx.extras, "llm": wrapped})
    # redacted first, as every request is: answering then reads the markers (and the key they hid) as
    # no words of the question (``answer.answerability.NOISE``), the same policy as /v1/ask
    out: Any = registry.get("ask").run(ctx, {"question": redactor.text(question)})
    return AgentAnswer(
        answer=out.answer,
        uncertain=out.uncertain,
        reason="weak or no evidence in the knowledge base" if out.uncertain else "",
        citations=[c.model_dump() for c in out.citations],
        drafts=list(out.drafts),
        intent="ask",
        mode="llm" if out.mode == "llm" else "offline",
        context=wrapped.sent if wrapped is not None else [],
    )
