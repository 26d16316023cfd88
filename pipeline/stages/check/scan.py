"""A cheap scan of an atom body: level/line of ATX headings, fenced code blocks, FAQ pairs.

``atoms.parse_body`` (markdown-it) is the reference and costs ~0.5 ms per atom; this line scanner
costs a tenth of that and gives the same answer for the Markdown atoms are written in. When a
body holds a construct where the two could disagree (setext headings or ``---`` rules, HTML
blocks, block quotes, tabs, fences indented 4+ spaces), we hand it to ``atoms.parse_body``.
A test holds the two equal on every atom in the test data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline import atoms
from pipeline.models import FAQ

_HARD = re.compile(r"^(?: {0,3}(?:=+|-+)[ \t]*$| {0,3}>|[ \t]*<| {4,}(?:```|~~~|#)|\t)", re.M)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


@dataclass
class Heading:
    level: int
    line: int  # file line
    text: str


def scan(body: str, body_line: int) -> tuple[list[Heading], list[FAQ], list[atoms.CodeBlock]]:
    """Headings, FAQ pairs and fenced code blocks of ``body`` (file lines)."""
    if _HARD.search(body):
        sections, faq, code = atoms.parse_body(body, body_line)
        return [Heading(s.level, s.line, s.heading) for s in sections], faq, code
    lines = body.split("\n")
    heads: list[tuple[int, int, str]] = []  # (level, 0-based line, text) as atoms.parse_faq wants
    code: list[atoms.CodeBlock] = []
    owner: str | None = None
    fence: tuple[str, int, str, int, int] | None = None  # (char, length, lang, indent, start)
    for idx, line in enumerate(lines):
        if fence is not None:
            char, length, lang, indent, start = fence
            stripped = line.strip()
            if (
                len(line) - len(line.lstrip(" ")) <= 3
                and stripped.startswith(char * length)
                and stripped.rstrip(char) == ""
            ):
                code.append(_block(lang, lines[start + 1 : idx], indent, body_line + start + 1, owner))
                fence = None
            continue
        c = line.lstrip(" ")[:1]
        if c == "#":
            m = _ATX.match(line)
            if m:
                text = (m.group(2) or "").strip()
                if text and set(text) == {"#"}:
                    text = ""
                level = len(m.group(1))
                heads.append((level, idx, text))
                if level == 2:
                    owner = text
        elif c in ("`", "~"):
            m = _FENCE.match(line)
            if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
                info = m.group(3).strip()
                fence = (
                    m.group(2)[0],
                    len(m.group(2)),
                    info.split(" ")[0].lower() if info else "",
                    len(m.group(1)),
                    idx,
                )
    if fence is not None:  # an unclosed fence runs to the end of the document
        char, length, lang, indent, start = fence
        code.append(_block(lang, lines[start + 1 :], indent, body_line + start + 1, owner, closed=False))
    faq = atoms.parse_faq(lines, heads, body_line)
    return [Heading(level, body_line + idx, text) for level, idx, text in heads], faq, code


def norm_heading(text: str) -> str:
    """Headings compare without case, extra spaces or a trailing colon."""
    return " ".join(text.strip().rstrip(":").split()).casefold()


def _block(
    lang: str, lines: list[str], indent: int, line: int, owner: str | None, closed: bool = True
) -> atoms.CodeBlock:
    if indent:
        lines = [ln[min(indent, len(ln) - len(ln.lstrip(" "))) :] for ln in lines]
    content = "\n".join(lines) + ("\n" if closed and lines else "")
    return atoms.CodeBlock(lang=lang, content=content, line=line, section=owner)
