"""The atom type of an imported piece, from its heading and content signals (``kb import-docs``)."""

from __future__ import annotations

import json
import re

import yaml

from pipeline import atoms
from pipeline.stages.import_docs.pieces import Piece
from pipeline.stages.import_docs.tree import Block, Doc, Node, is_part_heading

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
CONFIG_LANGS = {"yaml", "yml", "json"}


def is_question(doc: Doc, node: Node) -> bool:
    """A question heading: ends with '?', or any section directly under the title of a FAQ page."""
    if node.label.rstrip().endswith("?"):
        return True
    return doc.is_faq and node.parent is not None and node.parent is doc.root and node.level > doc.root.level


def piece_blocks(piece: Piece) -> list[Block]:
    out: list[Block] = []
    for u in piece.units:
        if u.whole:
            for n in u.node.walk():
                out += n.blocks
        else:
            out += u.blocks
    return out


def question_units(piece: Piece) -> list[Node] | None:
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
        if block.lang not in CONFIG_LANGS:
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
        return quoted or output or has_parts(node) or bool(_TROUBLE_DOC.search(f"{doc.rel} {doc.label}"))
    return bool(_ERROR_WEAK.search(heading)) and output


def infer_type(piece: Piece) -> str:
    """The atom type of a piece, from its heading and content (see the module docstring)."""
    if question_units(piece) is not None:
        return "faq"
    blocks = piece_blocks(piece)
    words = max(1, sum(b.words for b in blocks))
    single = len(piece.units) == 1
    head = piece.units[0].node
    heading = head.label if single else " ".join(u.node.label for u in piece.units)
    configs = [b for b in blocks if b.kind == "fence" and b.info in CONFIG_LANGS]
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
    if single and has_parts(head):
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


def has_parts(node: Node) -> bool:
    return any(is_part_heading(c.label) for c in node.children)
