"""What a specialist returns: the answer, its citations (atoms -> the expert's words, log lines),
``uncertain`` with the reason, drafts said, the tool calls made and what they cost.

Grounding rule: a cited atom counts only when a tool returned it in this loop; a cited log line
only when a tool output contains it. A final message with neither is ``uncertain``; so is one
where a tool reported an error that no atom covers.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipeline.agent.loop import LoopResult, ToolCallRecord, Usage

ATOM_CITE = re.compile(r"\[([a-z0-9][a-z0-9-]{0,119})\]")
LOG_CITE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.(?:log|jsonl|json|txt|out|err)):(\d+)\b")


class AgentAnswer(BaseModel):
    answer: str
    uncertain: bool
    reason: str = ""
    citations: list[dict[str, Any]] = Field(
        default_factory=list, description="Atoms with their sources (/v1/ask's shape)."
    )
    log_citations: list[str] = Field(default_factory=list, description="Log lines the answer rests on, as file:line.")
    drafts: list[str] = Field(default_factory=list, description="Cited atoms not reviewed yet.")
    intent: str | None = None
    ask_back: list[str] = Field(default_factory=list, description="Information the request lacks (the router asks).")
    artifact: dict[str, Any] | None = Field(
        None, description="The proposal or plan a specialist wrote (never applied)."
    )
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    stopped: str | None = None
    mode: Literal["llm", "offline"] = "llm"
    redactions: int = 0
    context: list[list[dict[str, Any]]] = Field(
        default_factory=list, exclude=True, description="Every request's messages exactly as sent (--show-context)."
    )

    # what the chat-completions route reads (the same names as answering's Answer)
    @property
    def tokens_in(self) -> int:
        return self.usage.tokens_in

    @property
    def tokens_out(self) -> int:
        return self.usage.tokens_out


def _walk(data: Any):
    if isinstance(data, dict):
        yield data
        for v in data.values():
            yield from _walk(v)
    elif isinstance(data, list):
        for v in data:
            yield from _walk(v)


def seen_atoms(outputs: list[dict[str, Any]]) -> set[str]:
    """Atom ids the tools returned (any ``atom_id`` / ``id`` of an atom-shaped object)."""
    ids: set[str] = set()
    for out in outputs:
        for d in _walk(out["output"]):
            if isinstance(d.get("atom_id"), str):
                ids.add(d["atom_id"])
            elif out["tool"] == "get_atom" and isinstance(d.get("id"), str):
                ids.add(d["id"])
    return ids


def seen_log_lines(outputs: list[dict[str, Any]]) -> set[str]:
    lines: set[str] = set()
    for out in outputs:
        for d in _walk(out["output"]):
            f, n = d.get("file"), d.get("line_number")
            if isinstance(f, str) and isinstance(n, int):
                lines.add(f"{f}:{n}")
                lines.add(f"{f.rsplit('/', 1)[-1]}:{n}")
    return lines


def uncovered_errors(outputs: list[dict[str, Any]]) -> list[str]:
    """Error messages a tool reported that no atom covers (triage's ``uncovered``, find_error's ``covered: false``)."""
    found = []
    for out in outputs:
        data = out["output"]
        if out["tool"] == "find_error" and data.get("covered") is False:
            found.append("an error message matched no error atom")
        for d in _walk(data):
            if d.get("uncovered") is True:
                found.append(str(d.get("line") or d.get("fingerprint") or "an error group"))
    return found


def grounded(result: LoopResult, index: Any, *, intent: str | None = None) -> AgentAnswer:
    """The loop's final text checked against what the tools returned."""
    text = result.text or "I could not finish within the budget for this request; nothing was concluded."
    atoms = seen_atoms(result.outputs)
    cited = [a for a in dict.fromkeys(ATOM_CITE.findall(text)) if a in atoms]
    invented = [a for a in dict.fromkeys(ATOM_CITE.findall(text)) if a not in atoms]
    logs_seen = seen_log_lines(result.outputs)
    logs = [f"{f}:{n}" for f, n in dict.fromkeys(LOG_CITE.findall(text)) if f"{f}:{n}" in logs_seen]
    citations, drafts = atom_citations(index, cited, result.outputs)
    reasons = []
    if not citations and not logs:
        reasons.append("the answer cites no atom or log line the tools returned")
    if invented:
        reasons.append(f"it cites atoms no tool returned: {', '.join(invented)}")
    unc = uncovered_errors(result.outputs)
    if unc:
        reasons.append(f"{len(unc)} error(s) are covered by no atom (e.g. {unc[0][:120]})")
    if result.stopped in ("tool budget", "request budget", "cost budget"):
        reasons.append(f"the loop stopped at its {result.stopped}")
    if drafts:
        text += "\n\nNote: this rests on draft atoms, not reviewed yet: " + ", ".join(drafts) + "."
    return AgentAnswer(
        answer=text,
        uncertain=bool(reasons),
        reason="; ".join(reasons),
        citations=citations,
        log_citations=logs,
        drafts=drafts,
        intent=intent,
        artifact=result.artifact,
        tool_calls=result.calls,
        usage=result.usage,
        stopped=result.stopped,
        redactions=result.redactions,
        context=result.sent,
    )


def atom_citations(
    index: Any, atom_ids: list[str], outputs: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Citations (the ``/v1/ask`` shape) of the cited atoms, from the index; without one (``kb ops ask`` on
    a workspace with no bundle), from what the tools returned about the atom (triage links its atoms)."""
    citations, drafts = [], []
    for atom_id in atom_ids:
        atom = index.atom(atom_id) if index is not None else None
        if atom is None:
            atom = _atom_from_outputs(outputs or [], atom_id)
        if atom is None:
            continue
        citations.append(
            {"atom_id": atom_id, "title": atom.get("title", ""), "sources": list(atom.get("sources") or [])}
        )
        if atom.get("status") == "draft":
            drafts.append(atom_id)
    return citations, drafts


def _atom_from_outputs(outputs: list[dict[str, Any]], atom_id: str) -> dict[str, Any] | None:
    """An atom's title, status and sources as a tool returned them (a triage link's citation)."""
    for out in outputs:
        for d in _walk(out["output"]):
            if d.get("atom_id") == atom_id and isinstance(d.get("title"), str):
                sources = [s for c in d.get("citations") or [] if isinstance(c, dict) for s in c.get("sources") or []]
                return {"title": d["title"], "status": d.get("status"), "sources": sources or d.get("sources") or []}
    return None
