"""``kb import-docs``, part 1: a Markdown document as a tree of heading sections of blocks.

markdown-it-py finds the blocks and headings (with their source lines); each block keeps its
original Markdown text, so code blocks, tables and lists reach the atom exactly as written.
Three rewrites make the text stand on its own outside the doc site, line for line so that
source line numbers stay true: MkDocs admonitions (``!!! note``) become block quotes, HTML
comments and horizontal rules are dropped, and relative links become readable text that names
the target document (``Diffing (user-guide/diffing.md)``), since the link would break in an atom.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from pipeline import atoms
from pipeline.errors import InputError

_MD = MarkdownIt("commonmark").enable("table")

#: File names whose title comes from their folder (``user-management/index.md``).
INDEX_STEMS = {"index", "readme", "_index"}


@dataclass
class Block:
    """One top-level Markdown block with its (rewritten) source text."""

    kind: str  # paragraph, fence, code_block, bullet_list, ordered_list, table, blockquote, html_block
    text: str
    line: int  # 1-based line of the block in the file
    info: str = ""  # fence language
    items: list[str] = field(default_factory=list)  # list items / table rows, for splitting big blocks
    ordered_items: int = 0  # items of an ordered list (nested ones included)
    plain: str = ""  # paragraph text without Markdown (for summaries)

    @property
    def words(self) -> int:
        return atoms.word_count(self.text)


@dataclass
class Node:
    """A heading and what it holds: its own blocks, then its sub-sections."""

    level: int  # 0 for the document root without a heading
    heading: str  # the exact heading text as written ("" for a root without heading)
    label: str  # plain text for titles: no Markdown, no HTML, no "3)" numbering
    display: str  # Markdown text for headings and questions in atoms (links made readable)
    line: int  # 1-based line of the heading in the file
    code_heading: bool = False  # the heading is mostly inline code (an option, a key, a command)
    blocks: list[Block] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)

    @property
    def own_words(self) -> int:
        return sum(b.words for b in self.blocks)

    @property
    def total_words(self) -> int:
        """Words of the whole section as an atom would hold it (sub-headings included)."""
        return self.own_words + sum(c.total_words + len(c.display.split()) + 1 for c in self.children)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def has_content(self) -> bool:
        return any(n.blocks for n in self.walk())


@dataclass
class Doc:
    rel: str  # path relative to the imported folder, with '/'
    root: Node
    label: str  # the document's title
    is_faq: bool
    front_matter: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# reading


def read_doc(path, rel: str, root_name: str = "") -> Doc:
    """Parse one Markdown file (UTF-8; YAML front matter allowed) into a Doc."""
    text = atoms.read_bytes(path)  # InputError with file and line for non-UTF-8 bytes
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    front: dict = {}
    body, offset = text, 0
    raw = atoms.split(text)
    if raw.front_matter is not None:
        try:
            atoms.load_yaml(raw)
        except InputError as exc:
            raise InputError(
                f"the document's YAML front matter does not parse: {exc.message}",
                "Fix the YAML between the '---' lines at the top of the document, or remove it.",
                path=str(path),
                line=exc.line,
                column=exc.column,
            ) from None
        if isinstance(raw.data, dict):  # a mapping: front matter; else a '---' rule, plain Markdown
            front = raw.data
            body, offset = raw.body, raw.body_line - 1
    return parse_markdown(body, rel, offset=offset, front_matter=front, root_name=root_name)


def parse_markdown(
    body: str, rel: str, *, offset: int = 0, front_matter: dict | None = None, root_name: str = ""
) -> Doc:
    """Build the heading tree of ``body`` (``offset`` = lines before it in the file; ``root_name``
    = the imported folder's name, context for vague page titles at its top)."""
    lines = body.split("\n")
    lines = _admonitions_to_quotes(lines)
    text = "\n".join(lines)
    tokens = _MD.parse(text)
    front_matter = front_matter or {}
    root = Node(level=0, heading="", label="", display="", line=1)
    stack = [root]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.level != 0 or tok.nesting == -1 or not tok.map:
            i += 1
            continue
        close = _closing(tokens, i)
        start, end = tok.map
        if tok.type == "heading_open":
            inline = tokens[i + 1]
            level = int(tok.tag[1])
            label = _strip_numbering(_plain(inline.children or []))
            node = Node(
                level=level,
                heading=inline.content.strip(),
                label=label,
                display=_display(inline, rel),
                line=offset + start + 1,
                code_heading=_is_code_heading(inline.children or []),
            )
            while stack[-1].level >= level:
                stack.pop()
            node.parent = stack[-1]
            stack[-1].children.append(node)
            stack.append(node)
        else:
            block = _block(tokens, i, close, lines, start, end, rel, offset)
            if block is not None:
                stack[-1].blocks.append(block)
        i = close + 1
    root = _lift_single_top(root)
    _adopt_orphans(root)
    label = _doc_label(rel, root, front_matter, root_name)
    if not root.label:
        root.label = root.display = label
    return Doc(rel=rel, root=root, label=label, is_faq=_is_faq_doc(rel, label), front_matter=front_matter)


def _closing(tokens: list, i: int) -> int:
    """Index of the token closing the block opened at ``i`` (``i`` itself for leaf tokens)."""
    tok = tokens[i]
    if tok.nesting != 1:
        return i
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _block(tokens, i, close, lines, start, end, rel, offset) -> Block | None:
    tok = tokens[i]
    kind = tok.type.removesuffix("_open")
    if kind == "hr":
        return None
    raw = "\n".join(lines[start:end]).rstrip()
    if kind == "html_block" and raw.lstrip().startswith("<!--") and raw.rstrip().endswith("-->"):
        return None  # an HTML comment: a note to the docs' authors, not content
    inner = tokens[i : close + 1]
    block = Block(kind=kind, text=raw, line=offset + start + 1)
    if kind == "fence":
        block.info = (tok.info or "").strip().split(" ")[0].lower()
        return block
    if kind in ("code_block", "html_block"):
        return block
    block.text = _rewrite_links(raw, inner, rel)
    if kind in ("bullet_list", "ordered_list"):
        spans = [t.map for t in inner if t.type == "list_item_open" and t.level == 1 and t.map]
        block.items = ["\n".join(lines[a:b]).rstrip() for a, b in spans]
        block.items = [_rewrite_links(item, inner, rel) for item in block.items]
    if kind == "table":
        rows = [t.map for t in inner if t.type == "tr_open" and t.map]
        block.items = ["\n".join(lines[a:b]) for a, b in rows]
    block.ordered_items = sum(
        1 for t in inner if t.type == "list_item_open" and _parent_list(inner, inner.index(t)) == "ordered_list_open"
    )
    if kind == "paragraph" and i + 1 < len(tokens):
        block.plain = " ".join(_plain(tokens[i + 1].children or []).split())
    if kind == "paragraph" and not block.plain.strip() and not _has_image(tokens[i + 1].children or []):
        return None
    return block


def _parent_list(tokens: list, idx: int) -> str | None:
    depth = 0
    for j in range(idx - 1, -1, -1):
        t = tokens[j]
        if t.nesting == -1:
            depth += 1
        elif t.nesting == 1:
            if depth == 0:
                return t.type
            depth -= 1
    return None


def _has_image(children: list) -> bool:
    return any(c.type == "image" for c in children)


# ---------------------------------------------------------------------------------------------
# heading text


def _plain(children: list) -> str:
    """Inline tokens as plain text: Markdown markers and HTML dropped, code spans kept as text."""
    out: list[str] = []
    for c in children:
        if c.type in ("text", "code_inline"):
            out.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif c.type == "image":
            out.append(_plain(c.children or []))
    return " ".join("".join(out).split())


def _display(inline, rel: str) -> str:
    """The heading as Markdown for an atom: inline HTML (anchors) dropped, links made readable."""
    text = inline.content.strip()
    text = re.sub(r"<a\b[^>]*>\s*</a>", "", text)
    text = re.sub(r"</?[A-Za-z][^>]*>", "", text).strip()
    return _rewrite_links(text, inline.children or [], rel)


_NUMBERING = re.compile(r"^\s*(?:\(?\d+(?:\.\d+)*[.):]|step\s+\d+[.:)]?)\s+", re.I)


def _strip_numbering(label: str) -> str:
    stripped = _NUMBERING.sub("", label).strip()
    return stripped or label


def _is_code_heading(children: list) -> bool:
    code = sum(len(c.content) for c in children if c.type == "code_inline")
    text = sum(len(c.content.strip()) for c in children if c.type == "text")
    return code > 0 and code >= text


# ---------------------------------------------------------------------------------------------
# links

_LINK = re.compile(
    r"(?P<bang>!?)\[(?P<label>(?:[^\[\]\n]|\n(?![ \t]*\n)|\[[^\[\]\n]*\])*)\]"  # a label may wrap a line
    r"\(\s*<?(?P<url>[^\s()<>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
_CODE_SPAN = re.compile(r"(`+)[^`]*?\1")
_SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def _has_links(tokens: list) -> bool:
    for t in tokens:
        if t.type in ("link_open", "image"):
            return True
        if t.children and _has_links(t.children):
            return True
    return False


def _rewrite_links(text: str, tokens: list, rel: str) -> str:
    """Relative links and images -> ``label (path/relative/to/the/import.md)``; others kept."""
    if not _has_links(tokens):
        return text
    spans = [m.span() for m in _CODE_SPAN.finditer(text)]

    def repl(m: re.Match) -> str:
        if any(a <= m.start() < b for a, b in spans):
            return m.group(0)
        url = m.group("url")
        if _SCHEME.match(url):
            return m.group(0)
        label = m.group("label").strip()
        if url.startswith("#"):
            return label  # a link to a section of the same page: the words are enough
        path, _, anchor = url.partition("#")
        target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), path)) if path else rel
        target += f"#{anchor}" if anchor else ""
        if m.group("bang"):
            return f"(image: {label or posixpath.basename(path)}, {target})"
        return f"{label} ({target})" if label else target

    return _LINK.sub(repl, text)


# ---------------------------------------------------------------------------------------------
# admonitions (MkDocs / Python-Markdown extension syntax, unknown to CommonMark)

_ADMONITION = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?P<marker>!!!|\?\?\?\+?)[ \t]*(?P<kind>[\w-]+)(?:[ \t]+[\w-]+)*|(?P<tab>===\+?))"
    r'(?:[ \t]+"(?P<title>[^"]*)")?[ \t]*$'
)
_FENCE_LINE = re.compile(r"^\s*(```|~~~)")


def _admonitions_to_quotes(lines: list[str]) -> list[str]:
    """``!!! note "Title"`` + indented body -> ``> **Note:** Title`` + ``> body``; a content tab
    ``=== "Title"`` -> ``**Title**`` + its body dedented. Same line count, so lines stay true."""
    out = list(lines)
    in_fence: str | None = None
    i = 0
    while i < len(out):
        line = out[i]
        fence = _FENCE_LINE.match(line)
        if fence:
            marker = fence.group(1)
            in_fence = None if in_fence == marker else (in_fence or marker)
            i += 1
            continue
        m = None if in_fence else _ADMONITION.match(line)
        if not m:
            i += 1
            continue
        indent = m.group("indent").expandtabs(4)
        title = (m.group("title") or "").strip()
        tab = m.group("tab") is not None  # a content tab (=== "Title"): a bold line, then its text
        if tab:
            out[i] = f"{indent}**{title}**"
        else:
            kind = m.group("kind").replace("-", " ").capitalize()
            out[i] = f"{indent}> **{kind}:**" + (f" {title}" if title else "")
        body_indent = len(indent) + 4
        j = i + 1
        last = i
        while j < len(out):
            nxt = out[j].expandtabs(4)
            if nxt.strip() and len(nxt) - len(nxt.lstrip(" ")) < body_indent:
                break
            if nxt.strip():
                last = j
            j += 1
        for k in range(i + 1, last + 1):
            nxt = out[k].expandtabs(4)
            if tab:
                out[k] = f"{indent}{nxt[body_indent:]}" if nxt.strip() else ""
            else:
                out[k] = f"{indent}> {nxt[body_indent:]}" if nxt.strip() else f"{indent}>"
        i = last + 1
    return out


# ---------------------------------------------------------------------------------------------
# structure

#: Headings that only make sense as part of the section before them ("### Solution" written at
#: the level of the numbered problems it belongs to).
PART_HEADINGS = {
    "solution",
    "solutions",
    "symptom",
    "symptoms",
    "workaround",
    "workarounds",
    "fix",
    "cause",
    "causes",
    "resolution",
    "root cause",
    "problem",
}


def is_part_heading(label: str) -> bool:
    return " ".join(label.lower().rstrip(":").split()) in PART_HEADINGS


def _adopt_orphans(node: Node) -> None:
    """Move a 'Solution' section written at its problem's level under that problem."""
    kept: list[Node] = []
    for child in node.children:
        prev = kept[-1] if kept else None
        if (
            prev is not None
            and is_part_heading(child.label)
            and not is_part_heading(prev.label)
            and not any(is_part_heading(c.label) and c.label.lower() == child.label.lower() for c in prev.children)
        ):
            child.parent = prev
            prev.children.append(child)
            continue
        kept.append(child)
    node.children = kept
    for child in node.children:
        _adopt_orphans(child)


# ---------------------------------------------------------------------------------------------
# document titles


def _lift_single_top(root: Node) -> Node:
    """A document with one top heading (its ``# Title``) is that heading's section."""
    if len(root.children) == 1 and root.children[0].level == 1:
        top = root.children[0]
        top.blocks = root.blocks + top.blocks  # text before the title (badges, logos) joins it
        top.parent = None
        return top
    return root


def humanise(name: str) -> str:
    words = re.sub(r"[-_]+", " ", name).strip()
    return words[:1].upper() + words[1:] if words else name


_GENERIC_DOC = {"troubleshooting", "faq", "index", "readme", "overview", "introduction", "errors", "commands"}


def _doc_label(rel: str, root: Node, front: dict, root_name: str = "") -> str:
    title = front.get("title")
    if isinstance(title, str) and title.strip():
        return " ".join(title.split())
    if root.label:
        return root.label
    parts = rel.split("/")
    stem = posixpath.splitext(parts[-1])[0]
    folder = parts[-2] if len(parts) > 1 else root_name
    if stem.lower() in INDEX_STEMS and folder:
        return humanise(folder)
    label = humanise(stem)
    if folder and stem.lower().split("-")[0] in _GENERIC_DOC | {"troubleshooting"}:
        return f"{humanise(folder)} {label[:1].lower()}{label[1:]}"
    return label


def _is_faq_doc(rel: str, label: str) -> bool:
    stem = posixpath.splitext(rel.split("/")[-1])[0]
    return bool(re.search(r"\bfaqs?\b|frequently asked", f"{stem} {label}", re.I))
