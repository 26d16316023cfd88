"""Atom ids from titles, and the skeleton ``kb new TYPE TITLE`` writes."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from pipeline.atoms.writing import dump_yaml, meta_to_data
from pipeline.models import TYPE_SECTIONS, AtomMeta


def slugify(title: str, max_len: int = 80) -> str:
    """A file-name-safe id from a title: ascii, lowercase, hyphens."""
    norm = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0] or slug[:max_len]
    return slug or "atom"


_SECTION_HINTS: dict[str, str] = {
    "What it means": "What the message or state means, in one or two sentences.",
    "Common causes": "- The most frequent cause first.",
    "How to resolve": "1. The first thing to try.",
    "Steps": "1. First step.\n2. Second step.",
    "Symptoms": "- What the operator sees.",
    "Triage": "- What to check first, and how.",
    "Actions": "1. What to do for each triage outcome.",
    "What it is": "What the input is and where it is set.",
    "Accepted values": "- Value and meaning.",
    "Default": "The default value.",
    "Effect": "What changes when it is set.",
    "Example": "An example value in context.",
    "Symptom": "What the operator sees.",
    "Tip": "What helps, and why.",
    "Template": "```yaml\n# the configuration\n```",
    "What not to do": "The tempting mistake.",
    "Why": "What goes wrong.",
    "What to do instead": "The safe alternative.",
    "FAQ": "**Q:** A question a user would ask?\n**A:** Its answer.",
}


def skeleton(atom_type: str, title: str, *, author: str | None = None, today: dt.date | None = None) -> str:
    """The text ``kb new TYPE TITLE`` writes: front matter plus the type's section headings."""
    today = today or dt.date.today()
    meta = AtomMeta(
        id=slugify(title),
        title=title,
        type=atom_type,  # type: ignore[arg-type]  # a str; pydantic checks it against the Literal
        summary="",
        author=author,
        created=today,
        updated=today,
        generator=None,
    )
    data = meta_to_data(meta)
    body_parts = ["One or two sentences of purpose and context.", ""]
    for heading in TYPE_SECTIONS[atom_type]:
        body_parts += [f"## {heading}", "", _SECTION_HINTS.get(heading, ""), ""]
    return "---\n" + dump_yaml(data) + "---\n" + "\n".join(body_parts).rstrip("\n") + "\n"
