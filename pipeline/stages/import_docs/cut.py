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

import json
import re
from dataclasses import dataclass, field

import yaml

from pipeline import atoms
from pipeline.models import DocumentSource
from pipeline.stages.import_docs.tree import Block, Doc, Node, is_part_heading

STANDALONE = {"error", "procedure", "config-template"}

# ---------------------------------------------------------------------------------------------
# pieces


@dataclass
class Unit:
    """Part of a piece: a whole section (``node`` and everything under it), or some of its blocks."""

    node: Node
    whole: bool
    blocks: list[Block] = field(default_factory=list)  # when not whole
    part: int | None = None  # chunk number of a long section

    @property
    def words(self) -> int:
        if self.whole:
            return self.node.total_words
        return sum(b.words for b in self.blocks)


@dataclass
class Piece:
    doc: Doc
    units: list[Unit]
    parent: Node | None  # the section whose sub-sections the units are (None: the document)
    type: str = "troubleshooting-tip"
    title: str = ""
    body: str = ""
    sources: list[DocumentSource] = field(default_factory=list)
    summary: str = ""


@dataclass
class Limits:
    min_words: int = 400
    max_words: int = 800
    hard_cap: int = 1500


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
    if t in STANDALONE or (unit.whole and _has_parts(unit.node)):
        return "standalone"  # one problem with its own symptom/solution: an atom of its own
    return "general"


def _has_parts(node: Node) -> bool:
    return any(is_part_heading(c.label) for c in node.children)


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
        chunks, acc, cur = [], 0, []
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


# ---------------------------------------------------------------------------------------------
# types

_ERROR_STRONG = re.compile(
    r"\b(errors?|errored|fail(?:s|ed|ure|ing)?|denied|not found|no such|invalid|refused|timed? ?out|"
    r"timeouts?|exceeded|not supported|unsupported|does ?n[o']t exist|x509|panic|unauthori[sz]ed|"
    r"forbidden|not permitted|mismatch|unknown (?:field|flag|option|host|authority)|deadline|"
    r"crash\w*|oom\w*|out of memory|bad request|unavailable|not declared|already (?:bound|in use|exists))\b",
    re.I,
)
_ERRORS_DOC = re.compile(r"(?:^|[/_ -])errors(?:[/_ .-]|$)", re.I)
_TROUBLE_DOC = re.compile(r"troubleshoot|errors?\b|faq|known[-_ ]issues|problems", re.I)
_ERROR_WEAK = re.compile(
    r"\b(cannot|can ?not|can't|unable|won't|doesn't work|does not work|stuck|hangs?|missing)\b", re.I
)
_ERROR_OUTPUT = re.compile(
    r"^\s*(?:\S+:\s*)?(?:error|err|erro|fatal|fata|panic|failed)\b|\b(?:error|denied|failed|not found|no such|refused|invalid)\b",
    re.I | re.M,
)
_PROCEDURE_HEAD = re.compile(
    r"^(how to|steps?\b|install|upgrad|configur|set(?:ting)? up|creat|enabl|disabl|add|remov|migrat|"
    r"rotat|deploy|generat|reset|restor|back ?up|register|to \w+)",
    re.I,
)
_PITFALL_HEAD = re.compile(
    r"\b(pitfalls?|gotchas?|caveats?|avoid|don'?t|do not|never|limitations?|known issues?|"
    r"warnings?|security considerations?|deprecat\w*|breaking)\b",
    re.I,
)
_PITFALL_TEXT = re.compile(
    r"\b(do not|don't|never|avoid|not recommended|should not|shouldn't|must not|be careful|caution|"
    r"beware|pitfall|gotcha|dangerous)\b|\*\*(?:warning|danger|caution|important):\*\*",
    re.I,
)
_INPUT_HEAD = re.compile(
    r"\b(options?|flags?|parameters?|settings?|annotations?|fields?|variables?|arguments?|"
    r"keys?|labels?|properties|values)\b",
    re.I,
)
_FLAG_LINE = re.compile(r"^\s*(?:[-*]\s+|\|\s*)?`?--?[a-z][\w-]+", re.I | re.M)
_CONFIG_LANGS = {"yaml", "yml", "json"}


def is_question(doc: Doc, node: Node) -> bool:
    """A question heading: ends with '?', or any section directly under the title of a FAQ page."""
    if node.label.rstrip().endswith("?"):
        return True
    return doc.is_faq and node.parent is not None and node.parent is doc.root and node.level > doc.root.level


def _blocks(piece: Piece) -> list[Block]:
    out: list[Block] = []
    for u in piece.units:
        if u.whole:
            for n in u.node.walk():
                out += n.blocks
        else:
            out += u.blocks
    return out


def _question_units(piece: Piece) -> list[Node] | None:
    """The question sections of a FAQ piece, or None when the piece is not questions and answers."""
    doc = piece.doc
    whole = [u for u in piece.units if u.whole]
    if whole and len(whole) == len(piece.units) and all(is_question(doc, u.node) for u in whole):
        return [u.node for u in whole]
    if len(piece.units) == 1 and whole:
        node = whole[0].node
        if (
            node.children
            and all(is_question(doc, c) for c in node.children)
            and node.own_words < 0.3 * node.total_words
        ):
            return list(node.children)
    return None


def config_blocks_parse(blocks: list[Block]) -> bool:
    """True when every yaml/json code block in ``blocks`` (nested ones too) parses to data:
    ``kb check`` reports a config-template block that does not parse as an error."""
    _, _, code = atoms.parse_body("\n\n".join(b.text for b in blocks))
    for block in code:
        if block.lang not in _CONFIG_LANGS:
            continue
        try:
            if block.lang == "json":
                json.loads(block.content)
            else:
                docs = [d for d in yaml.safe_load_all(block.content) if d is not None]
                if not docs or not all(isinstance(d, (dict, list)) for d in docs):
                    return False
        except (ValueError, yaml.YAMLError):
            return False
    return True


def _is_error(doc: Doc, node: Node, heading: str, code_text: str) -> bool:
    """Is the section about an error message? Error words in a feature page's heading are not enough."""
    if _ERRORS_DOC.search(f"{doc.rel} {doc.label}") and node is not doc.root and not node.children:
        return True  # a section of a page of error messages
    message_like = ":" in heading or _ERROR_STRONG.search(heading) or _ERROR_WEAK.search(heading)
    if message_like and len(heading.split()) >= 3 and heading.lower() in code_text.lower():
        return True  # the heading is a message the console output shows
    output = bool(_ERROR_OUTPUT.search(code_text))
    if _ERROR_STRONG.search(heading):
        quoted = "`" in node.heading or re.search(r"[\"'].+[\"']", node.heading) is not None
        return quoted or output or _has_parts(node) or bool(_TROUBLE_DOC.search(f"{doc.rel} {doc.label}"))
    return bool(_ERROR_WEAK.search(heading)) and output


def infer_type(piece: Piece) -> str:
    """The atom type of a piece, from its heading and content (see the module docstring)."""
    if _question_units(piece) is not None:
        return "faq"
    blocks = _blocks(piece)
    words = max(1, sum(b.words for b in blocks))
    single = len(piece.units) == 1
    head = piece.units[0].node
    heading = head.label if single else " ".join(u.node.label for u in piece.units)
    configs = [b for b in blocks if b.kind == "fence" and b.info in _CONFIG_LANGS]
    config_words = sum(b.words for b in configs)
    text = "\n".join(b.text for b in blocks)
    code_text = "\n".join(b.text for b in blocks if b.kind in ("fence", "code_block"))
    if single:
        if _is_error(piece.doc, head, heading, code_text):
            return "error"
        if configs and config_words >= 0.6 * words and config_blocks_parse(blocks):
            return "config-template"
        ordered = sum(b.ordered_items for b in blocks)
        ordered_words = sum(b.words for b in blocks if b.kind == "ordered_list")
        if ordered >= 3 and (ordered_words >= 0.3 * words or _PROCEDURE_HEAD.search(heading)):
            return "procedure"
    if single and _has_parts(head):
        return "troubleshooting-tip"  # a problem and its solution that is not an error message
    if _PITFALL_HEAD.search(heading):
        return "pitfall"
    flags = len(_FLAG_LINE.findall(text))
    tables_with_defaults = any(
        b.kind == "table" and re.search(r"default", b.items[0] if b.items else "", re.I) for b in blocks
    )
    if head.code_heading or _INPUT_HEAD.search(heading) or tables_with_defaults or flags >= 5:
        return "interface-input"
    cautions = len(_PITFALL_TEXT.findall(text))
    if cautions >= 3 and cautions * 150 >= words:
        return "pitfall"
    return "troubleshooting-tip"


# ---------------------------------------------------------------------------------------------
# rendering

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
    },
    "pitfall": {"why": "Why", "instead": "What to do instead", "faq": "FAQ"},
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
    questions = _question_units(piece) if piece.type == "faq" else None
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
            if m and m.group(2).lower() in _CONFIG_LANGS:
                if i > 0 and intro[i - 1].rstrip().endswith(":") and len(intro[i - 1].split()) <= 30:
                    i -= 1  # the sentence introducing the block goes with it
                return parts[:i] + ["## Template"] + parts[i:]
    return parts


def _summary(piece: Piece) -> str:
    """The first sentence of the piece's first paragraph (the docs' own words), at most 200 chars."""
    for block in _blocks(piece):
        if block.kind == "paragraph" and len(block.plain.split()) >= 5:
            text = block.plain
            m = re.match(r"(.+?[.!?])(\s|$)", text)
            sentence = m.group(1) if m else text
            if len(sentence) > 200:
                sentence = sentence[:199].rsplit(" ", 1)[0] + "…"
            return sentence
    return ""
