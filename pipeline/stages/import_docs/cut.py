"""``kb import-docs``, part 2: cut a document tree into one-screen pieces, type them, render them.

Cutting: a section that fits in ``max_words`` becomes one piece with its sub-sections; a longer
one is cut at its sub-headings; a long run of text with no sub-headings is cut between blocks
(paragraphs, lists, code blocks; a list or table too long on its own is cut between items or
rows, a code block only when it alone passes the hard cap). Small sibling sections of a kind
that combines (questions; tips, options, caveats) are merged up to ``min_words``..``max_words``;
an error, a procedure or a config template stays one atom each, however short.

Typing reads the heading and content signals; rendering keeps the original Markdown, re-levels
headings (the piece's own heading becomes the title) and renames a sub-heading to the section
name the type expects when it means the same (``Solution`` -> ``How to resolve``).
"""

from __future__ import annotations

import re

from pipeline.stages.import_docs.kinds import has_parts, infer_type
from pipeline.stages.import_docs.pieces import STANDALONE, Limits, Piece, Unit
from pipeline.stages.import_docs.render import render
from pipeline.stages.import_docs.tree import Block, Doc, Node


def cut(doc: Doc, limits: Limits) -> tuple[list[Piece], list[str]]:
    """The pieces of a document, in document order, typed and rendered; plus notes for the user."""
    if limits.max_words > limits.hard_cap - 100:  # a screen must stay well under the hard cap
        limits = Limits(min(limits.min_words, limits.hard_cap // 2), max(50, limits.hard_cap - 100), limits.hard_cap)
    notes: list[str] = []
    pieces = _cut_node(doc, doc.root, limits, notes)
    for piece in pieces:
        piece.type = infer_type(piece)
        render(piece)
    return pieces, notes


def _cut_node(doc: Doc, node: Node, limits: Limits, notes: list[str]) -> list[Piece]:
    if node.total_words <= limits.max_words and not _holds_standalones(doc, node):
        return [Piece(doc, [Unit(node, True)], node.parent)] if node.has_content() else []
    out: list[Piece] = []
    level: list[Unit] = []  # units at this level, merged before they become pieces
    if _significant(node.blocks):
        if node.own_words <= limits.max_words:
            level.append(Unit(node, False, node.blocks))
        else:
            out += [Piece(doc, [u], node) for u in _chunks(doc, node, limits, notes)]
    for child in node.children:
        if child.total_words <= limits.max_words and not _holds_standalones(doc, child):
            if child.has_content():
                level.append(Unit(child, True))
            continue
        out += _merge(doc, node, level, limits)
        level = []
        out += _cut_node(doc, child, limits, notes)
    out += _merge(doc, node, level, limits)
    return out


def _holds_standalones(doc: Doc, node: Node) -> bool:
    """A section listing several errors (or procedures, templates, problems) is cut even when short:
    each of them is an atom of its own, found and cited on its own."""
    count = 0
    for child in node.children:
        if child.has_content() and _merge_kind(doc, Unit(child, True)) == "standalone":
            count += 1
            if count >= 2:
                return True
    return False


def _significant(blocks: list[Block]) -> bool:
    """Text before the first sub-heading worth an atom: not just a logo, a badge or a 'see below'."""
    words = sum(b.words for b in blocks if not (b.kind == "paragraph" and not b.plain))
    return words >= 8


def _merge(doc: Doc, parent: Node, units: list[Unit], limits: Limits) -> list[Piece]:
    groups: list[list[Unit]] = []
    for unit in units:
        kind = _merge_kind(doc, unit)
        if groups:
            last = groups[-1]
            last_kind = _merge_kind(doc, last[-1])
            total = sum(u.words for u in last)
            if (
                kind == last_kind
                and kind != "standalone"
                and total < limits.min_words
                and total + unit.words <= limits.max_words
            ):
                last.append(unit)
                continue
        groups.append([unit])
    return [Piece(doc, group, parent) for group in groups]


def _merge_kind(doc: Doc, unit: Unit) -> str:
    t = infer_type(Piece(doc, [unit], unit.node.parent))
    if t == "faq":
        return "faq"
    if t in STANDALONE or (unit.whole and has_parts(unit.node)):
        return "standalone"  # one problem with its own symptom/solution: an atom of its own
    return "general"


def _chunks(doc: Doc, node: Node, limits: Limits, notes: list[str]) -> list[Unit]:
    """A long run of blocks cut into near-equal parts between blocks (code blocks kept whole)."""
    blocks: list[Block] = []
    for block in node.blocks:
        blocks += _split_block(block, limits, notes, doc.rel)
    total = sum(b.words for b in blocks)
    n = max(1, -(-total // limits.max_words))
    target = total / n
    parts: list[list[Block]] = [[]]
    acc = 0
    for block in blocks:
        if parts[-1] and (acc + block.words > limits.max_words or acc >= target):
            parts.append([])
            acc = 0
        parts[-1].append(block)
        acc += block.words
    return [Unit(node, False, part, i + 1) for i, part in enumerate(parts)]


def _split_block(block: Block, limits: Limits, notes: list[str], rel: str) -> list[Block]:
    """A block longer than a screen, as several blocks: list items, table rows, code lines."""
    if block.words <= limits.max_words:
        return [block]
    if block.kind in ("bullet_list", "ordered_list") and len(block.items) > 1:
        return _pack(block, block.items, limits.max_words, header=[])
    if block.kind == "table" and len(block.items) > 3:
        return _pack(block, block.items[2:], limits.max_words, header=block.items[:2])
    if block.kind == "fence" and block.words > limits.hard_cap - 100:
        lines = block.text.split("\n")
        opening, closing, content = lines[0], lines[-1], lines[1:-1]
        notes.append(f"{rel}:{block.line}: a {block.words}-word code block was cut in parts to stay under the hard cap")
        chunks: list[list[str]] = []
        acc = 0
        cur: list[str] = []
        for line in content:
            w = len(line.split())
            if cur and acc + w > limits.max_words and not line.strip():
                chunks.append(cur)
                cur, acc = [], 0
                continue
            cur.append(line)
            acc += w
            if acc > limits.hard_cap - 200:  # no blank line to cut at: cut here
                chunks.append(cur)
                cur, acc = [], 0
        if cur:
            chunks.append(cur)
        return [
            Block(kind="fence", text="\n".join([opening, *c, closing]), line=block.line, info=block.info)
            for c in chunks
        ]
    if block.kind in ("paragraph", "blockquote"):
        pieces: list[str] = []
        for line in block.text.split("\n"):
            if len(line.split()) > limits.max_words:  # one long line: cut between sentences
                pieces += re.split(r"(?<=[.!?])\s+", line)
            else:
                pieces.append(line)
        prefix = "> " if block.kind == "blockquote" else ""
        items = [p if p.startswith(">") or not prefix else prefix + p for p in pieces]
        parts = _pack(block, items, limits.max_words, header=[])
        for part in parts:
            part.plain = " ".join(part.text.split()) if block.kind == "paragraph" else ""
        return parts
    if block.words > limits.hard_cap - 100:  # anything else past the hard cap: cut between lines
        notes.append(
            f"{rel}:{block.line}: a {block.words}-word {block.kind} was cut in parts to stay under the hard cap"
        )
        return _pack(block, block.text.split("\n"), limits.max_words, header=[])
    return [block]


def _pack(block: Block, items: list[str], limit: int, header: list[str]) -> list[Block]:
    out: list[Block] = []
    cur: list[str] = []
    acc = 0
    for item in items:
        w = len(item.split())
        if cur and acc + w > limit:
            out.append(Block(kind=block.kind, text="\n".join(header + cur), line=block.line, info=block.info))
            cur, acc = [], 0
        cur.append(item)
        acc += w
    if cur:
        out.append(Block(kind=block.kind, text="\n".join(header + cur), line=block.line, info=block.info))
    return out
