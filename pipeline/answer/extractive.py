"""Extractive answers: the best FAQ pair (or section, plus what to do) of the best atom, verbatim."""

from __future__ import annotations

import re
from typing import Any

from pipeline.answer.citations import citation, hit_dict
from pipeline.answer.model import Answer, BundleLike
from pipeline.atoms import parse_body

MAX_ANSWER_CHARS = 1500


def extractive_answer(bundle: BundleLike, hits: list[Any], weak: bool) -> Answer:
    best = hits[0]
    h = hit_dict(best)
    text = _passage_answer(bundle, h)
    focus = " ".join([h["passage"].get("heading") or "", h["passage"].get("text") or "", text])[:4000]
    text = clip(text, MAX_ANSWER_CHARS)
    if weak:
        text = f'I\'m not sure: nothing in the knowledge base matches this question closely. The closest atom, "{h["title"]}", says:\n\n{text}'
    text = f"{text} [{h['atom_id']}]"
    return Answer(text, weak, [citation(best, focus)], mode="extractive")


#: The section of each type that says what to do: added to an answer cut from another section.
RESOLUTION_SECTIONS = ("How to resolve", "Steps", "Actions", "Tip", "What to do instead", "Template", "Effect")


def _passage_answer(bundle: BundleLike, h: dict[str, Any]) -> str:
    """The text to show for the best hit: its FAQ answer, or its section (plus what to do), or its summary."""
    passage = h.get("passage") or {}
    kind = passage.get("kind", "")
    heading = passage.get("heading") or ""
    ptext = (passage.get("text") or "").strip()
    atom = bundle.atom(h["atom_id"]) or {}
    faqs = [_pair(p) for p in atom.get("faq") or []]
    if kind == "faq":
        for q, a in faqs:
            if q and _norm(q) in _norm(ptext):
                return a.strip()
        m = re.search(r"\bA:\**\s*(.*)", ptext, re.S)
        if m:
            return m.group(1).strip()
    sections = _sections(atom)
    todo = next(((name, sections[name]) for name in RESOLUTION_SECTIONS if sections.get(name)), None)
    if kind == "section" and ptext:
        if todo and todo[0] != heading and todo[1] not in ptext:
            return f"{ptext}\n\n{todo[0]}: {todo[1]}"
        return ptext
    summary = str(atom.get("summary") or (atom.get("meta") or {}).get("summary") or "").strip()
    if faqs:
        return faqs[0][1].strip()
    if todo:
        return f"{summary}\n\n{todo[0]}: {todo[1]}".strip()
    return summary or ptext or h["title"]


def _sections(atom: dict[str, Any]) -> dict[str, str]:
    body = atom.get("body")
    if not body:
        return {}
    sections, _, _ = parse_body(str(body))
    return {s.heading: s.text for s in sections if s.level == 2 and s.heading != "FAQ"}


def _pair(pair: Any) -> tuple[str, str]:
    if isinstance(pair, dict):
        return str(pair.get("question", "")), str(pair.get("answer", ""))
    return str(getattr(pair, "question", "")), str(getattr(pair, "answer", ""))


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit)
    return text[: max(cut, 1)].rstrip() + " …"
