"""The next interview's question guide (``interviews/<id>/guide.md``), from the ranked gaps.

Grouped by topic; each question says why it is asked: the users' own words and how often they
asked, the error triage could not match, the draft users were answered from, the empty cell.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.models import is_valid_id
from pipeline.stages.gaps.rank import report
from pipeline.workspace import Workspace, atomic_write_text

_ASK = {
    "question": lambda r: r.text if r.text.rstrip().endswith("?") else r.text.rstrip(".") + "?",
    "uncovered-error": lambda r: f"What does this error mean, and how do you resolve it: `{r.text}`?",
    "asked-draft": lambda r: f'Is this right, and what is missing: "{r.text}"?',
    "empty-cell": lambda r: _cell_question(r.text),
}


def _cell_question(text: str) -> str:
    atype, _, topic = text.partition(" on ")
    return {
        "error": f"Which errors do you see with {topic}, and what do they mean?",
        "procedure": f"Walk us through doing {topic}, step by step.",
        "troubleshooting-tip": f"When {topic} misbehaves, what do you check first?",
        "pitfall": f"What should people never do with {topic}, and why?",
    }.get(atype, f"What should a reader know about {topic}?")


def write_guide(
    ws: Workspace, settings: Settings, interview_id: str, *, limit: int = 30, today: dt.date | None = None
) -> tuple[Path, int]:
    """Write ``interviews/<id>/guide.md``; returns its path and how many questions it holds."""
    if not is_valid_id(interview_id):
        raise InputError(f"'{interview_id}' is not a valid interview id", "Use lowercase letters, digits and '-'.")
    ranked = report(ws, settings).items[:limit]
    today = today or dt.date.today()
    lines = [
        f"# Question guide for {interview_id}",
        "",
        f"Written by `kb gaps guide` on {today.isoformat()} from what users asked and the knowledge base could "
        "not answer, errors no atom covers, drafts users relied on, and types of knowledge missing per topic. "
        "Ask in your own words; the reasons say what the answer is for.",
        "",
    ]
    if not ranked:
        lines += ["No gaps recorded yet: users' uncertain questions appear here once `kb serve` has answered some.", ""]
    by_topic: dict[str, list] = {}
    for r in ranked:
        by_topic.setdefault(r.topic, []).append(r)
    n = 0
    for topic, items in by_topic.items():
        lines += [f"## {topic[:1].upper() + topic[1:]}", ""]
        for r in items:
            n += 1
            lines.append(f"{n}. {_ASK[r.kind](r)}")
            lines.append(f"   - Why: {r.why}.")
            if r.kind == "question":
                lines += [f'   - Users asked: "{e}"' for e in r.examples]
            lines.append("")
    path = ws.interview_dir(interview_id) / "guide.md"
    atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")
    return path, n
