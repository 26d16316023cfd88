"""Cut an atom into the passages that are embedded and searched.

One passage for the title + summary (+ the intro before the first heading), one per ``##``
section (FAQ excluded), one per FAQ pair. The embedding model reads at most ``max_tokens`` word
pieces and silently drops the rest, so a passage longer than that is split (between paragraphs,
then sentences, then words) into parts that each fit, counted with the model's own tokenizer.

Each passage keeps the text shown to people (``text``) and the text searched (``search_text``:
the atom title and heading first, so a section like "Common causes" still says what it is about).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.models import Atom

KINDS = ("title", "section", "faq")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")


@dataclass(frozen=True)
class Passage:
    atom_id: str
    kind: str  # title | section | faq
    heading: str  # the title, the section heading or the FAQ question
    text: str  # what a person reads
    search_text: str  # what is embedded and indexed
    part: int = 0  # 0 unless a long passage was split


def estimate_tokens(text: str) -> int:
    """A cautious word-piece estimate for when no tokenizer is at hand."""
    return 2 + int(len(text.split()) * 1.5)


def atom_passages(
    atom: Atom,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = 256,
) -> list[Passage]:
    count = count_tokens or estimate_tokens
    meta = atom.meta
    title = meta.title.strip()
    out: list[Passage] = []

    intro = _intro(atom.body)
    head_text = "\n\n".join(t for t in (meta.summary.strip(), intro) if t)
    out += _fit(meta.id, "title", title, head_text, f"{title}\n", count, max_tokens)

    body_sections = [s for s in atom.sections if s.heading.strip().lower() != "faq"]
    # '##' sections hold the content (deeper headings are inside them); an atom without any
    # uses its top-level headings instead, so no text is left out of search
    level = 2 if any(s.level == 2 for s in body_sections) else min((s.level for s in body_sections), default=2)
    for section in body_sections:
        if section.level != level or not section.text.strip():
            continue
        heading = section.heading.strip()
        out += _fit(meta.id, "section", heading, section.text.strip(), f"{title}: {heading}\n", count, max_tokens)

    for pair in atom.faq:
        q, a = pair.question.strip(), pair.answer.strip()
        if not q:
            continue
        out += _fit(meta.id, "faq", q, a, f"{title}\nQ: {q}\nA: ", count, max_tokens, shown_prefix=f"Q: {q}\nA: ")
    return out


def _intro(body: str) -> str:
    """The text before the first heading (a '#' inside a fenced code block is not a heading)."""
    lines = []
    fence = ""
    for line in body.strip().splitlines():
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif re.match(r" {0,3}#{1,6}(\s|$)", line):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def _fit(
    atom_id: str,
    kind: str,
    heading: str,
    text: str,
    prefix: str,
    count: Callable[[str], int],
    max_tokens: int,
    shown_prefix: str = "",
) -> list[Passage]:
    whole = prefix + text
    if count(whole) <= max_tokens:
        return [Passage(atom_id, kind, heading, shown_prefix + text, whole)]
    budget = max(16, max_tokens - count(prefix) - 2)
    parts = _split(text, budget, count)
    return [Passage(atom_id, kind, heading, shown_prefix + part, prefix + part, n + 1) for n, part in enumerate(parts)]


def _split(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Greedy packing of paragraphs, then sentences, then words, each part within ``budget``."""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if count(para) <= budget:
            pieces.append(para)
            continue
        for sentence in _SENTENCE.split(para):
            if count(sentence) <= budget:
                pieces.append(sentence)
            else:
                pieces += _words(sentence, budget, count)
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if current and count(candidate) > budget:
            parts.append(current)
            current = piece
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


def _words(sentence: str, budget: int, count: Callable[[str], int]) -> list[str]:
    words = sentence.split()
    out: list[str] = []
    start = 0
    while start < len(words):
        lo, hi = start + 1, len(words)
        while lo < hi:  # the longest run of words that fits (at least one)
            mid = (lo + hi + 1) // 2
            if count(" ".join(words[start:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        out.append(" ".join(words[start:lo]))
        start = lo
    return out
