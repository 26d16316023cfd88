"""Triage as text: the report ``kb triage`` prints, and the answer ``kb ops ask`` gives offline."""

from __future__ import annotations

from typing import Any

from pipeline.ops.records import RANK
from pipeline.ops.triage import Group, TriageResult, link_dict

MAX_LINE = 220


def _where(g: Group) -> str:
    when = ""
    if g.first_seen:
        when = f", {g.first_seen}" + (f" .. {g.last_seen}" if g.last_seen and g.last_seen != g.first_seen else "")
    return f"{g.file}:{g.line_number}{when}"


def _cut(text: str, n: int = MAX_LINE) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _source_text(src: dict[str, Any]) -> str:
    if src.get("interview"):
        return f'{src.get("speaker") or src["interview"]} at {src.get("start", 0):.0f}s in {src["interview"]}: "{_cut(str(src.get("quote", "")), 120)}"'
    if src.get("document"):
        return (
            f"{src['document']}"
            + (f" § {src['heading']}" if src.get("heading") else "")
            + (f" (line {src['line']})" if src.get("line") else "")
        )
    return ", ".join(f"{k}={v}" for k, v in src.items())


def render_report(result: TriageResult, max_groups: int = 50, steps: int = 3) -> list[str]:
    """The human report: one block per group, most relevant first."""
    errors = [g for g in result.groups if RANK.get(g.level, 9) == 0]
    warnings = [g for g in result.groups if RANK.get(g.level, 9) == 1]
    unc = [g for g in result.groups if g.uncovered]
    lines = [
        f"{len(errors)} error group(s), {len(warnings)} warning group(s) in {len(result.files)} file(s), "
        f"{result.lines} line(s); {len(unc)} not covered by any atom"
    ]
    for n, g in enumerate(result.groups[:max_groups], 1):
        lines.append("")
        lines.append(f"{n}. {g.level.upper()} x{g.count}  {_where(g)}")
        lines.append(f"   {_cut(g.line)}")
        if g.uncovered:
            lines.append("   UNCOVERED: no atom describes this error (a question for the next interview)")
        for link in g.links:
            d = link_dict(link, g.message)
            draft = " - draft, not yet reviewed" if d["status"] == "draft" else ""
            lines.append(f"   -> {d['title']}  [{d['atom_id']}] ({d['status']}, {d['match']} {d['score']:.2f}){draft}")
            for i, step in enumerate(d["resolution"][:steps], 1):
                lines.append(f"      {i}. {_cut(step, 300)}")
            for src in d["citations"][0]["sources"][:2]:
                lines.append(f"      source: {_source_text(src)}")
    rest = len(result.groups) - max_groups
    for t in result.truncated + (
        [f"{rest} more group(s) not shown (--format json shows --max-groups)"] if rest > 0 else []
    ):
        lines.append(f"note: {t}")
    return lines


def render_answer(question: str, system: str, result: TriageResult, max_groups: int = 10) -> dict[str, Any]:
    """The triage as the answer to ``question`` (no LLM): cited, uncertain where no atom covers."""
    groups = [g for g in result.groups if RANK.get(g.level, 9) <= 1][:max_groups]
    citations: list[dict[str, Any]] = []
    drafts: list[str] = []
    parts = [f"Triage of system '{system}' ({result.lines} lines in {len(result.files)} file(s)); question: {question}"]
    if not groups:
        parts.append("No error or warning lines were found, so the logs do not say why it failed.")
    for n, g in enumerate(groups, 1):
        head = f"{n}. {g.level} x{g.count} at {_where(g)}: {_cut(g.line, 300)}"
        citations.append({"log": f"{g.file}:{g.line_number}", "time": g.first_seen, "line": g.line})
        if g.uncovered:
            parts.append(
                head + "\n   No atom covers this error: uncertain (it becomes a question for the next interview)."
            )
            continue
        d = link_dict(g.links[0], g.message)
        steps = "; ".join(d["resolution"][:3])
        status = f" (status {d['status']}: a draft, not yet reviewed)" if d["status"] == "draft" else ""
        parts.append(head + f"\n   The knowledge base says [{d['atom_id']}] {d['title']}{status}: {_cut(steps, 700)}")
        citations.extend(c for c in d["citations"] if c["atom_id"] not in {x.get("atom_id") for x in citations})
        if d["status"] == "draft":
            drafts.append(d["atom_id"])
    if drafts:
        parts.append(
            f"Note: this rests on draft atoms ({', '.join(sorted(set(drafts)))}); their citations are kept above."
        )
    uncertain = not groups or any(g.uncovered and RANK.get(g.level, 9) == 0 for g in groups)
    return {
        "answer": "\n".join(parts),
        "uncertain": uncertain,
        "citations": citations,
        "drafts": sorted(set(drafts)),
        "triage": result.to_dict(max_groups=max_groups),
    }
