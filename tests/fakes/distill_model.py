"""Shared helpers for the distillation tests: workspaces, transcripts and a grounded fake model.

The transcript excerpt (tests/data/distill/litestream-excerpt.json) holds real turns of Ship It!
#59 (Changelog Media, CC BY-SA 4.0; see tests/data/ATTRIBUTION.md) with evenly spaced word times.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.models import Interview, Person, Transcript
from tests.fakes.openai_server import Answer, tool_call

DATA = Path(__file__).parent.parent / "data" / "distill"
LINE = re.compile(r"^\[(?P<start>[\d.]+)-(?P<end>[\d.]+)\] (?P<name>.+?) \((?P<role>[a-z]+)\): (?P<text>.*)$")


def excerpt() -> Transcript:
    return Transcript.model_validate_json((DATA / "litestream-excerpt.json").read_text(encoding="utf-8"))


def make_workspace(
    root: Path, transcripts: dict[str, Transcript], people: dict[str, list[tuple[str, str]]] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "kb.yaml").write_text("", encoding="utf-8")
    for iid, tr in transcripts.items():
        folder = root / "interviews" / iid
        folder.mkdir(parents=True, exist_ok=True)
        ppl = (people or {}).get(iid) or [(s.name, s.role) for s in tr.speakers if s.role in ("expert", "interviewer")]
        iv = Interview(
            id=iid,
            title=f"Interview {iid}",
            date=dt.date(2022, 6, 30),
            people=[Person(name=n, role=r) for n, r in ppl],  # type: ignore[arg-type]
        )
        (folder / "interview.yaml").write_text(yaml.safe_dump(iv.model_dump(mode="json")), encoding="utf-8")
        (folder / "transcript.json").write_text(tr.model_dump_json(indent=1, exclude_none=True), encoding="utf-8")
    return root


def excerpt_turns(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The turns of the excerpt a distill request carries (what a model would read)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    out = []
    for line in user.split("Excerpt:\n", 1)[1].splitlines():
        m = LINE.match(line)
        if m:
            out.append({**m.groupdict(), "start": float(m["start"]), "end": float(m["end"])})
    return out


def item(
    turn: dict[str, Any],
    *,
    title: str | None = None,
    quote: str | None = None,
    speaker: str | None = None,
    kind: str = "troubleshooting-tip",
) -> dict[str, Any]:
    words = turn["text"].split()
    q = quote if quote is not None else " ".join(words[3:15])
    sections = {
        "troubleshooting-tip": [
            {"heading": "Symptom", "text": "Writes feel slow far from the primary."},
            {"heading": "Tip", "text": "Keep one primary; " + " ".join(words[:12])},
        ],
        "pitfall": [
            {"heading": "What not to do", "text": "Run a big database for a tiny app."},
            {"heading": "Why", "text": "Most apps use a tiny fraction of it."},
            {"heading": "What to do instead", "text": "Use SQLite with replication."},
        ],
    }[kind]
    return {
        "type": kind,
        "title": title or "Tip: " + " ".join(words[:6]).strip(".,"),
        "summary": "What the expert advises.",
        "context": "From the interview.",
        "sections": sections,
        "faq": [{"question": "What does the expert suggest?", "answer": " ".join(words[:20]), "evidence": 0}],
        "tags": ["sqlite"],
        "prerequisites": [],
        "related": [],
        "evidence": [{"speaker": speaker or turn["name"], "start": turn["start"], "end": turn["end"], "quote": q}],
    }


def grounded_model(request: dict[str, Any]) -> Answer:
    """A well-behaved model: one grounded tip per long expert turn of the window."""
    items = [item(t) for t in excerpt_turns(request) if t["role"] == "expert" and len(t["text"].split()) > 20]
    return tool_call("Extraction", {"items": items})


def reask_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
