"""Rendering an imported piece: the original Markdown, headings re-levelled and renamed to the type's sections."""

from __future__ import annotations

import re

from pipeline.models import TYPE_SECTIONS, DocumentSource
from pipeline.stages.import_docs.kinds import CONFIG_LANGS, piece_blocks, question_units
from pipeline.stages.import_docs.pieces import Piece
from pipeline.stages.import_docs.tree import Node

#: Sub-headings that mean a section the type asks for (lower case, without a trailing colon).
SYNONYMS: dict[str, dict[str, str]] = {
    "error": {
        "solution": "How to resolve",
        "solutions": "How to resolve",
        "fix": "How to resolve",
        "resolution": "How to resolve",
        "workaround": "How to resolve",
        "how to fix": "How to resolve",
        "how to resolve": "How to resolve",
        "how do i fix the issue?": "How to resolve",
        "symptom": "What it means",
        "symptoms": "What it means",
        "problem": "What it means",
        "description": "What it means",
        "issue": "What it means",
        "error": "What it means",
        "cause": "Common causes",
        "causes": "Common causes",
        "root cause": "Common causes",
        "common causes": "Common causes",
        "reason": "Common causes",
        "explanation": "What it means",
        "what it means": "What it means",
        "faq": "FAQ",
    },
    "troubleshooting-tip": {
        "symptom": "Symptom",
        "symptoms": "Symptom",
        "problem": "Symptom",
        "solution": "Tip",
        "solutions": "Tip",
        "fix": "Tip",
        "workaround": "Tip",
        "tip": "Tip",
        "faq": "FAQ",
    },
    "procedure": {"steps": "Steps", "procedure": "Steps", "instructions": "Steps", "faq": "FAQ"},
    "interface-input": {
        "example": "Example",
        "examples": "Example",
        "default": "Default",
        "default value": "Default",
        "values": "Accepted values",
        "accepted values": "Accepted values",
        "effect": "Effect",
        "faq": "FAQ",
        "description": "What it is",
        "what it is": "What it is",
        "usage": "Example",
        "possible values": "Accepted values",
    },
    "pitfall": {
        "why": "Why",
        "instead": "What to do instead",
        "what to do instead": "What to do instead",
        "what not to do": "What not to do",
        "avoid": "What not to do",
        "faq": "FAQ",
    },
    "config-template": {"template": "Template", "example": "Template", "faq": "FAQ"},
    "faq": {},
}


def _heading(node: Node, level: int, piece_type: str | None) -> str:
    text = node.display or node.label
    if piece_type is not None and level == 2:
        key = " ".join(node.label.lower().rstrip(":").split())
        text = SYNONYMS.get(piece_type, {}).get(key, text)
    return "#" * min(6, level) + " " + text


def _section(node: Node, level: int, piece_type: str | None, with_heading: bool = True) -> list[str]:
    """A node and its sub-sections as Markdown parts, its heading at ``level``."""
    parts = [_heading(node, level, piece_type)] if with_heading else []
    parts += [b.text for b in node.blocks]
    for child in node.children:
        if child.has_content():
            parts += _section(child, level + 1, piece_type)
    return parts


def _answer(node: Node) -> str:
    """A question's section as the answer: its text, sub-headings as bold lines."""
    parts = [b.text for b in node.blocks]
    for child in node.walk():
        if child is node or not child.has_content():
            continue
        parts.append(f"**{child.display or child.label}**")
        parts += [b.text for b in child.blocks]
    return "\n\n".join(parts).strip()


def render(piece: Piece) -> None:
    """Set ``piece.body``, ``piece.sources`` and ``piece.summary``."""
    rel = piece.doc.rel
    sources: list[Node] = []
    parts: list[str] = []
    questions = question_units(piece) if piece.type == "faq" else None
    if questions is not None:
        if len(piece.units) == 1 and piece.units[0].node not in questions:
            holder = piece.units[0].node
            parts += [b.text for b in holder.blocks]
            sources.append(holder)
        pairs = []
        for q in questions:
            answer = _answer(q)
            if not answer:
                continue
            sources += [n for n in q.walk() if n is q or n.has_content()]
            question = " ".join((q.display or q.label).split())
            if _starts_with_paragraph(q):
                pairs.append(f"**Q:** {question}\n**A:** {answer}")
            else:
                pairs.append(f"**Q:** {question}\n**A:**\n\n{answer}")
        parts += ["## FAQ", *pairs]
    else:
        for unit in piece.units:
            node = unit.node
            if not unit.whole:
                parts += [b.text for b in unit.blocks]
                sources.append(node)
            elif len(piece.units) == 1:
                parts += _section(node, 1, piece.type, with_heading=False)
                sources += [n for n in node.walk() if n is node or n.has_content()]
            else:
                parts += _section(node, 2, None)
                sources += [n for n in node.walk() if n is node or n.has_content()]
        parts = _structure(parts, piece.type)
        parts, piece.needs = complete_sections(parts, piece.type)
    seen: set[int] = set()
    piece.sources = []
    for node in sources:
        if id(node) in seen:
            continue
        seen.add(id(node))
        piece.sources.append(DocumentSource(document=rel, heading=node.heading, line=node.line))
    piece.body = "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"
    piece.summary = _summary(piece) if piece.type != "faq" else ""


def _starts_with_paragraph(node: Node) -> bool:
    return bool(node.blocks) and node.blocks[0].kind == "paragraph"


def _structure(parts: list[str], piece_type: str) -> list[str]:
    """Give the type's main section a heading when the text before the first heading holds it."""
    first_heading = next((i for i, p in enumerate(parts) if p.startswith("#")), len(parts))
    intro = parts[:first_heading]
    if piece_type == "procedure" and not any(p == "## Steps" for p in parts):
        for i, p in enumerate(intro):
            if re.match(r"^\s{0,3}\d+[.)]\s", p):
                return parts[:i] + ["## Steps"] + parts[i:]
    if piece_type == "config-template" and not any(p == "## Template" for p in parts):
        for i, p in enumerate(intro):
            m = re.match(r"^\s{0,3}(```+|~~~+)\s*(\w+)", p)
            if m and m.group(2).lower() in CONFIG_LANGS:
                if i > 0 and intro[i - 1].rstrip().endswith(":") and len(intro[i - 1].split()) <= 30:
                    i -= 1  # the sentence introducing the block goes with it
                return parts[:i] + ["## Template"] + parts[i:]
    return parts


#: The section a document's untitled text belongs to, per type.
MAIN_SECTION = {
    "error": "What it means",
    "procedure": "Steps",
    "playbook": "Symptoms",
    "interface-input": "What it is",
    "troubleshooting-tip": "Tip",
    "config-template": "Template",
    "pitfall": "What not to do",
}
NOT_IN_SOURCE = "_Not in the source document._"
NO_FAQ = "_No questions in the source document yet._"


def complete_sections(parts: list[str], piece_type: str) -> tuple[list[str], list[str]]:
    """Every section the type asks for: the document's text goes under the main one, the document's
    other headings below it, and what the document does not say is a marked placeholder and a need."""
    required = [h for h in TYPE_SECTIONS.get(piece_type, ()) if h != "FAQ"]
    if piece_type == "faq":
        return parts, []
    wanted = {h.lower() for h in required} | {"faq"}

    def level2(p: str) -> str | None:
        m = re.match(r"^## (?!#)(.+)$", p.strip())
        return m.group(1).strip().lower() if m else None

    have = {level2(p) for p in parts if level2(p)}
    out = list(parts)
    main = MAIN_SECTION.get(piece_type)
    if main and main.lower() not in have:
        first = next((i for i, p in enumerate(out) if p.startswith("#")), len(out))
        at = 1 if first >= 2 else 0
        out.insert(at, f"## {main}")
        have.add(main.lower())
    out = [
        ("#" + p) if p.startswith("#") and level2(p) not in wanted and not p.startswith("######") else p for p in out
    ]
    needs: list[str] = []
    for i, heading in enumerate(required):
        if heading.lower() not in have:
            later = {h.lower() for h in required[i + 1 :]}
            at = next((k for k, p in enumerate(out) if level2(p) in later), len(out))
            out[at:at] = [f"## {heading}", NOT_IN_SOURCE]
            have.add(heading.lower())
            needs.append(f"{heading}: not in the source document; write it or change the type")
    if "faq" not in have:
        out += ["## FAQ", NO_FAQ]
        needs.append("FAQ: add the questions a reader would ask, with their answers")
    return out, needs


def _summary(piece: Piece) -> str:
    """The first sentence of the piece's first paragraph (the docs' own words), at most 200 chars."""
    for block in piece_blocks(piece):
        if block.kind == "paragraph" and len(block.plain.split()) >= 5:
            text = block.plain
            m = re.match(r"(.+?[.!?])(\s|$)", text)
            sentence = m.group(1) if m else text
            if len(sentence) > 200:
                sentence = sentence[:199].rsplit(" ", 1)[0] + "…"
            return sentence
    return ""
