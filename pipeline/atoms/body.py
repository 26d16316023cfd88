"""The body of an atom: sections, FAQ pairs and code blocks (markdown-it-py, block level only: fast)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

from pipeline.models import FAQ, Section

_MD = MarkdownIt("commonmark")
_MD.disable(["inline", "text_join"], ignoreInvalid=True)

_Q_RE = re.compile(r"^\s*\*\*Q:\*\*\s*(.*)$")
_A_RE = re.compile(r"^\s*\*\*A:\*\*\s*(.*)$")


@dataclass
class CodeBlock:
    lang: str
    content: str
    line: int  # line of the first content line in the file
    section: str | None


def _tokens(body: str) -> list:
    return _MD.parse(body)


def parse_body(body: str, body_line: int = 1) -> tuple[list[Section], list[FAQ], list[CodeBlock]]:
    """Sections (every heading), FAQ pairs (from ``## FAQ``) and fenced code blocks, with file lines."""
    lines = body.split("\n")
    tokens = _tokens(body)
    heads: list[tuple[int, int, str]] = []  # (level, 0-based line, text)
    blocks: list[tuple[str, str, int]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            text = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            heads.append((int(tok.tag[1]), tok.map[0], text))
        elif tok.type == "fence" and tok.map:
            blocks.append((tok.info.strip().split(" ")[0].lower() if tok.info else "", tok.content, tok.map[0] + 1))
    sections: list[Section] = []
    for n, (level, start, text) in enumerate(heads):
        end = len(lines)
        for level2, start2, _ in heads[n + 1 :]:
            if level2 <= level:
                end = start2
                break
        sections.append(
            Section(heading=text, level=level, line=body_line + start, text="\n".join(lines[start + 1 : end]).strip())
        )
    code: list[CodeBlock] = []
    for lang, content, start in blocks:
        owner = None
        for level, hstart, text in heads:
            if hstart < start and level == 2:
                owner = text
        code.append(CodeBlock(lang=lang, content=content, line=body_line + start, section=owner))
    faq = parse_faq(lines, heads, body_line)
    return sections, faq, code


def parse_faq(lines: list[str], heads: list[tuple[int, int, str]], body_line: int) -> list[FAQ]:
    """The ``**Q:**``/``**A:**`` pairs under ``## FAQ``, given the body's ``lines`` and its headings
    as ``(level, 0-based line, text)``; each pair keeps the file line of its question."""
    faq_start = faq_end = None
    for n, (level, start, text) in enumerate(heads):
        if level == 2 and text.strip().lower() == "faq":
            faq_start = start + 1
            faq_end = len(lines)
            for level2, start2, _ in heads[n + 1 :]:
                if level2 <= 2:
                    faq_end = start2
                    break
            break
    if faq_start is None:
        return []
    pairs: list[FAQ] = []
    current_q: list[str] | None = None
    current_a: list[str] | None = None
    q_line = 0
    in_answer = False

    def flush() -> None:
        if current_q is not None:
            pairs.append(
                FAQ(
                    question=" ".join(s.strip() for s in current_q if s.strip()),
                    answer="\n".join(current_a or []).strip(),
                    line=q_line,
                )
            )

    assert faq_end is not None  # set together with faq_start
    for idx in range(faq_start, faq_end):
        line = lines[idx]
        mq = _Q_RE.match(line)
        if mq:
            flush()
            current_q, current_a, q_line, in_answer = [mq.group(1)], None, body_line + idx, False
            continue
        ma = _A_RE.match(line)
        if ma and current_q is not None:
            current_a, in_answer = [ma.group(1)], True
            continue
        if current_q is None:
            continue
        if in_answer and current_a is not None:
            current_a.append(line)
        elif line.strip():
            current_q.append(line)
    flush()
    return pairs


def word_count(body: str) -> int:
    """Words of prose in the body (headings and FAQ markers count; code fences count too)."""
    return len(body.split())
