"""Atom files: Markdown + YAML front matter <-> ``Atom``. The only module importing python-frontmatter.

Reviewers own these files, so writing is conservative:
- a file read and written back unchanged is byte-identical;
- when only some front-matter keys change, the other keys keep their original text (key order,
  quoting, comments), so git diffs show exactly what changed;
- ``generator.content_hash`` fingerprints what the pipeline wrote, so a later run can tell that
  a person has edited the atom and must not overwrite it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt
from pydantic import ValidationError

from pipeline.errors import InputError
from pipeline.models import FAQ, TYPE_SECTIONS, Atom, AtomMeta, Section
from pipeline.textio import read_utf8
from pipeline.workspace import atomic_write_text, sha256_text

# ---------------------------------------------------------------------------------------------
# YAML: dates stay strings while loading (pydantic parses them and reports impossible dates
# with the field), and every key keeps its line for error messages.

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLoader(_BaseLoader):  # type: ignore[misc, valid-type]  # a run-time choice of base (C or Python loader)
    """Safe YAML loader (C-accelerated when available) that keeps dates as strings."""


YamlLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}

_HANDLER = frontmatter.YAMLHandler()
_FENCE_START = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n")


@dataclass
class RawAtom:
    """The layers of an atom file, before validation. ``kb check`` diagnoses from this."""

    text: str
    front_matter: str | None  # YAML text, None when the file has no front matter block
    body: str
    fm_line: int  # line of the first YAML line in the file
    body_line: int  # line of the first body line in the file
    data: Any = None  # parsed YAML (None until load_yaml succeeds)
    lines: dict[tuple, int] = field(default_factory=dict)  # key path -> line in the file
    duplicate_keys: list[tuple[str, int]] = field(default_factory=list)


def split(text: str) -> RawAtom:
    """Split a file into front matter and body (python-frontmatter's YAML boundary rule)."""
    stripped = text[1:] if text.startswith("\ufeff") else text
    none = RawAtom(text=text, front_matter=None, body=text, fm_line=1, body_line=1)
    if not _FENCE_START.match(stripped):
        return none
    fences = _HANDLER.FM_BOUNDARY.finditer(stripped)
    opening = next(fences, None)
    closing = next(fences, None)
    if opening is None or closing is None or opening.start() != 0:
        return none
    fm_start = stripped.index("\n", opening.start()) + 1
    fm_text = stripped[fm_start : closing.start()]
    after = stripped.find("\n", closing.start())
    body = stripped[after + 1 :] if after >= 0 else ""
    fm_lines = fm_text.count("\n")
    return RawAtom(text=text, front_matter=fm_text, body=body, fm_line=2, body_line=2 + fm_lines + 1)


def load_yaml(raw: RawAtom) -> None:
    """Parse ``raw.front_matter`` into ``raw.data`` and ``raw.lines``; raise InputError with a line."""
    assert raw.front_matter is not None
    loader = YamlLoader(raw.front_matter)
    try:
        node = loader.get_single_node()
        raw.data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = raw.fm_line + mark.line if mark else raw.fm_line
        col = mark.column + 1 if mark else None
        raise InputError(
            f"front matter is not valid YAML: {exc.problem or exc.context}",
            "Fix the YAML syntax (quote values holding ': ' or '#', indent lists consistently).",
            line=line,
            column=col,
        ) from None
    finally:
        loader.dispose()
    if node is not None:
        _index_lines(node, (), raw)


def _index_lines(node: yaml.Node, prefix: tuple, raw: RawAtom) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = raw.fm_line + key_node.start_mark.line
            if key in seen and not prefix:
                raw.duplicate_keys.append((key, line))
            seen.add(key)
            raw.lines[prefix + (key,)] = line
            _index_lines(value_node, prefix + (key,), raw)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            raw.lines[prefix + (i,)] = raw.fm_line + item.start_mark.line
            _index_lines(item, prefix + (i,), raw)


def line_of(raw: RawAtom, loc: tuple) -> int:
    """The file line for a pydantic error location (falls back to the nearest known parent)."""
    loc = tuple(loc)
    while loc:
        if loc in raw.lines:
            return raw.lines[loc]
        loc = loc[:-1]
    return raw.fm_line


# ---------------------------------------------------------------------------------------------
# body: sections, FAQ pairs and code blocks (markdown-it-py, block level only: fast)

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


# ---------------------------------------------------------------------------------------------
# reading


def parse(text: str, path: str | Path | None = None) -> Atom:
    """Parse an atom file's text; raise InputError (with file and line) on the first problem."""
    raw = split(text)
    where = str(path) if path else None
    if raw.front_matter is None:
        raise InputError(
            "the file has no YAML front matter",
            "Start the file with '---', the atom's fields, then '---' (see 'kb new').",
            path=where,
            line=1,
        )
    try:
        load_yaml(raw)
    except InputError as exc:
        raise InputError(exc.message, exc.hint, path=where, line=exc.line, column=exc.column) from None
    if not isinstance(raw.data, dict) or not raw.data:
        raise InputError(
            "the front matter is empty or not a mapping",
            "Give the atom's fields as 'key: value' lines (see 'kb new').",
            path=where,
            line=raw.fm_line,
        )
    try:
        meta = AtomMeta.model_validate(raw.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"field '{loc}': {err['msg']}",
            "Run 'kb check' on the file for every problem and its fix.",
            path=where,
            line=line_of(raw, err["loc"]),
        ) from None
    sections, faq, _ = parse_body(raw.body, raw.body_line)
    return Atom(meta=meta, body=raw.body, faq=faq, sections=sections, path=where)


def read_bytes(path: Path) -> str:
    return read_utf8(path)


def read(path: Path) -> Atom:
    return parse(read_bytes(path), path)


# ---------------------------------------------------------------------------------------------
# writing


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # never write &id001 anchors
        return True


def _repr_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(x, (str, int, float, bool)) or x is None for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _repr_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(list, _repr_list)
_Dumper.add_representer(str, _repr_str)
_Dumper.add_representer(dt.date, lambda d, v: d.represent_scalar("tag:yaml.org,2002:timestamp", v.isoformat()))


def meta_to_data(meta: AtomMeta) -> dict[str, Any]:
    """Front matter as plain data, in field order, leaving out empty optional values."""
    data = meta.model_dump(mode="python", exclude_none=True)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("config_schema", "needs") and not value:
            continue
        if key == "generator" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in (None,)}
        out[key] = value
    return out


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False)


def _key_blocks(fm_text: str) -> tuple[list[str], dict[str, str], str]:
    """Split YAML text into top-level key blocks (comments attach to the key below them)."""
    order: list[str] = []
    blocks: dict[str, str] = {}
    pending = ""
    current: str | None = None
    for line in fm_text.splitlines(keepends=True):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
        if m:
            current = m.group(1)
            order.append(current)
            blocks[current] = pending + line
            pending = ""
        elif current is None or line.startswith("#") or not line.strip():
            pending += line
        else:
            blocks[current] += line
    return order, blocks, pending


def render(meta: AtomMeta, body: str, original: str | None = None) -> str:
    """The file text for an atom. With ``original``, unchanged keys keep their original text."""
    data = meta_to_data(meta)
    if original is not None:
        raw = split(original)
        if raw.front_matter is not None:
            try:
                load_yaml(raw)
            except InputError:
                raw.data = None
            if isinstance(raw.data, dict):
                old = AtomMeta.model_validate(raw.data) if _valid(raw.data) else None
                if old is not None and meta_to_data(old) == data and raw.body == body:
                    return original
                order, blocks, trailer = _key_blocks(raw.front_matter)
                old_data = meta_to_data(old) if old is not None else {}
                parts: list[str] = []
                for key, value in data.items():
                    if key not in blocks and key not in meta.model_fields_set:
                        continue  # a default the file never spelled out: keep it out of the diff
                    if key in blocks and key in old_data and old_data[key] == value:
                        parts.append(blocks[key])
                    else:
                        parts.append(dump_yaml({key: value}))
                return "---\n" + "".join(parts) + trailer + "---\n" + body
    return "---\n" + dump_yaml(data) + "---\n" + body


def _valid(data: dict) -> bool:
    try:
        AtomMeta.model_validate(data)
        return True
    except ValidationError:
        return False


def write(path: Path, meta: AtomMeta, body: str) -> str:
    """Atomically write an atom, keeping the original text of unchanged keys. Returns the text."""
    path = Path(path)
    original = path.read_text(encoding="utf-8") if path.is_file() else None
    text = render(meta, body, original)
    if text != original:
        atomic_write_text(path, text)
    return text


# ---------------------------------------------------------------------------------------------
# human-edit detection


def fingerprint(meta: AtomMeta, body: str) -> str:
    """sha256 of an atom's content, ignoring formatting and the fingerprint field itself."""
    data = meta.model_dump(mode="json", exclude_none=True)
    if not data.get("needs"):
        data.pop("needs", None)  # fingerprints of atoms written before the field existed stay valid
    gen = data.get("generator")
    if isinstance(gen, dict):
        gen.pop("content_hash", None)
    return sha256_text(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n" + body.strip())


#: Fields that are the reviewer's to set: a proposal differing only in these is not worth writing.
REVIEWER_FIELDS = ("title", "status", "tags", "reviewed_by", "needs")


def content_key(meta: AtomMeta, body: str, *, ignore: tuple[str, ...] = ()) -> str:
    """sha256 of what an atom says, leaving out dates, version, generator and the ``ignore``d fields."""
    data = meta.model_dump(mode="json", exclude={"created", "updated", "version", "generator", *ignore})
    return sha256_text(json.dumps(data, sort_keys=True) + "\n" + body.strip())


def stamp(meta: AtomMeta, body: str) -> AtomMeta:
    """Return ``meta`` with ``generator.content_hash`` set to the fingerprint of (meta, body)."""
    if meta.generator is None:
        return meta
    gen = meta.generator.model_copy(update={"content_hash": fingerprint(meta, body)})
    return meta.model_copy(update={"generator": gen})


def is_human_edited(atom: Atom) -> bool:
    """True when a person changed the atom since the pipeline wrote it (or it was never generated)."""
    gen = atom.meta.generator
    if gen is None or gen.kind == "human" or not gen.content_hash:
        return True
    return fingerprint(atom.meta, atom.body) != gen.content_hash


# ---------------------------------------------------------------------------------------------
# ids and skeletons


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
