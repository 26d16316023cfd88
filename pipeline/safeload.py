"""Safe loading of YAML and JSON that kb did not write: one policy, one error, one hint.

Every reader of a user's YAML (atoms' front matter, interview.yaml, kb.yaml, config blocks in
atoms, system adapters, users' config files) and of outside JSON (whisper JSON, config blocks,
transcripts, request bodies) goes through here, so a hostile file costs memory in proportion
to its size and fails with the same message everywhere:

- a size cap per document (checked before parsing);
- YAML: a depth limit, an alias count limit and an *expansion* limit: the size the document
  would have with every alias written out (the "billion laughs" bomb is a few hundred bytes
  that expand to gigabytes), and recursive aliases are refused. The composer below builds
  PyYAML's node graph from the (C-accelerated) event stream without recursion and counts as it
  goes, so nothing is expanded before it is measured;
- JSON: depth, number length (a 5,000-digit integer), lone UTF-16 surrogates, size.

``load_yaml_roundtrip`` applies the same checks, then loads with ruamel.yaml's round-trip
loader (comments and key order kept) for code that edits a user's config file. Every failure is
an ``InputError`` (limits: ``InputLimitError``) with the file and line; stdlib + PyYAML only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml import events as ev
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.errors import InputError, InputLimitError
from pipeline.textio import read_utf8

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

LIMIT_HINT = (
    "kb refuses YAML and JSON that would take far more memory than its size: write repeated "
    "values out instead of using &anchors and *aliases, keep nesting shallow and files small."
)
SYNTAX_HINT = "Fix the syntax at that line (quote values holding ': ' or '#', indent lists consistently)."


@dataclass(frozen=True)
class Limits:
    """Bounds for one document. Defaults fit every real kb file with room to spare."""

    max_bytes: int = 8 * 1024 * 1024  # one document's text
    max_depth: int = 64  # nested mappings/sequences (JSON: arrays/objects)
    max_aliases: int = 1_000  # YAML alias uses per document
    max_expansion: int = 10  # YAML: size with aliases written out, as a multiple of the text size ...
    min_expansion: int = 1_000_000  # ... but always at least this many characters
    max_number_chars: int = 100  # JSON: digits of one number literal


DEFAULT = Limits()


class _Loader(_BaseLoader):
    """Safe loader: plain YAML types only (C-accelerated when libyaml is there)."""


class _DatelessLoader(_BaseLoader):
    """Safe loader that keeps dates as strings (pydantic parses them and names a bad field)."""


_DatelessLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _BaseLoader.yaml_implicit_resolvers.items()  # type: ignore[attr-defined]  # untyped class attr
}


def _where(path: str | Path | None) -> str | None:
    return str(path) if path is not None else None


def check_size(text: str | bytes, path: str | Path | None, limits: Limits, what: str = "document") -> None:
    if len(text) > limits.max_bytes:
        raise InputLimitError(
            f"the {what} is {len(text):,} bytes (limit {limits.max_bytes:,})", LIMIT_HINT, path=_where(path), line=1
        )


# ---------------------------------------------------------------------------------------------
# YAML


class _Frame:
    __slots__ = ("node", "size", "key")

    def __init__(self, node: Node):
        self.node = node
        self.size = 1
        self.key: Node | None = None


class _Composer:
    """Builds one document's node graph from the event stream, measuring depth, aliases and expansion.

    PyYAML's own composer measures nothing; this one counts every alias and the size each would
    expand to while the graph is built, so a YAML bomb fails before it costs memory.
    """

    def __init__(self, loader: Any, text_len: int, limits: Limits, where: str | None, line_offset: int):
        self.loader = loader
        self.limits = limits
        self.where = where
        self.line_offset = line_offset
        self.budget = max(limits.max_expansion * text_len, limits.min_expansion)
        self.anchors: dict[str, Node] = {}
        self.sizes: dict[int, int] = {}
        self.open_ids: set[int] = set()
        self.stack: list[_Frame] = []
        self.aliases = 0
        self.root: Node | None = None

    def fail(self, message: str, mark: Any) -> NoReturn:
        line = self.line_offset + mark.line + 1 if mark is not None else None
        raise InputLimitError(message, LIMIT_HINT, path=self.where, line=line)

    def attach(self, node: Node, size: int, mark: Any) -> None:
        if not self.stack:
            self.root = node
            return
        top = self.stack[-1]
        top.size += size
        if top.size > self.budget:
            self.fail(
                f"the YAML would expand to more than {self.budget:,} characters with its aliases written out", mark
            )
        if isinstance(top.node, SequenceNode):
            top.node.value.append(node)
        elif top.key is None:
            top.key = node
        else:
            top.node.value.append((top.key, node))
            top.key = None

    def compose(self) -> Node | None:
        self.loader.get_event()  # DocumentStart
        while True:
            event = self.loader.get_event()
            if isinstance(event, ev.DocumentEndEvent):
                return self.root
            if isinstance(event, ev.AliasEvent):
                self.alias(event)
                continue
            anchor = getattr(event, "anchor", None)
            if anchor is not None and anchor in self.anchors:
                raise yaml.composer.ComposerError(
                    "found duplicate anchor", self.anchors[anchor].start_mark, "second occurrence", event.start_mark
                )
            if isinstance(event, ev.ScalarEvent):
                self.scalar(event, anchor)
            elif isinstance(event, ev.SequenceStartEvent | ev.MappingStartEvent):
                self.start(event, anchor)
            elif isinstance(event, ev.SequenceEndEvent | ev.MappingEndEvent):
                frame = self.stack.pop()
                frame.node.end_mark = event.end_mark
                self.open_ids.discard(id(frame.node))
                self.sizes[id(frame.node)] = frame.size
                self.attach(frame.node, frame.size, event.start_mark)

    def alias(self, event: ev.AliasEvent) -> None:
        mark: Any = event.start_mark
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            self.fail(f"the YAML uses more than {self.limits.max_aliases:,} aliases", mark)
        target = self.anchors.get(event.anchor or "")
        if target is None:
            raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}", mark)
        if id(target) in self.open_ids:
            self.fail(f"the YAML alias *{event.anchor} refers to itself (a recursive structure)", mark)
        self.attach(target, self.sizes[id(target)], mark)

    def scalar(self, event: ev.ScalarEvent, anchor: str | None) -> None:
        mark: Any = event.start_mark
        if event.style == '"' and _SURROGATE.search(event.value):  # only "\ud800" escapes make them
            raise InputError(
                "a YAML string holds a lone UTF-16 surrogate, which is not text",
                "Write the character itself, or a \\U0001xxxx escape, instead of a \\ud800-\\udfff escape.",
                path=self.where,
                line=self.line_offset + mark.line + 1,
            )
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, event.value, event.implicit)
        if tag in _NUMBER_TAGS and len(event.value) > self.limits.max_number_chars:
            self.fail(
                f"the YAML holds a number with {len(event.value):,} characters (limit {self.limits.max_number_chars})",
                mark,
            )
        node: Node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)  # type: ignore[arg-type]  # libyaml Mark
        size = 1 + len(event.value)
        if anchor is not None:
            self.anchors[anchor] = node
        self.sizes[id(node)] = size
        self.attach(node, size, mark)

    def start(self, event: ev.SequenceStartEvent | ev.MappingStartEvent, anchor: str | None) -> None:
        kind = SequenceNode if isinstance(event, ev.SequenceStartEvent) else MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)  # type: ignore[arg-type]  # libyaml Mark
        if anchor is not None:
            self.anchors[anchor] = node
        self.open_ids.add(id(node))
        self.stack.append(_Frame(node))
        if len(self.stack) > self.limits.max_depth:
            self.fail(f"the YAML is nested more than {self.limits.max_depth} levels deep", event.start_mark)


def _compose_document(loader: Any, text_len: int, limits: Limits, where: str | None, line_offset: int) -> Node | None:
    """One document's node graph from the event stream, measuring depth, aliases and expansion."""
    return _Composer(loader, text_len, limits, where, line_offset).compose()


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _syntax_error(exc: yaml.YAMLError, where: str | None, line_offset: int, hint: str) -> InputError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    return InputError(
        f"not valid YAML: {problem}",
        hint,
        path=where,
        line=line_offset + mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
    )


def _loader_class(dates: bool) -> type:
    return _Loader if dates else _DatelessLoader


def compose_yaml_all(
    text: str,
    *,
    path: str | Path | None = None,
    line_offset: int = 0,
    dates: bool = True,
    limits: Limits = DEFAULT,
    hint: str = SYNTAX_HINT,
    construct: bool = False,
) -> list[Any]:
    """Every document of ``text`` as a node (or, with ``construct``, as Python data), checked."""
    where = _where(path)
    check_size(text, where, limits)
    loader = _loader_class(dates)(text)
    out: list[Any] = []
    try:
        loader.get_event()  # StreamStart
        while not loader.check_event(ev.StreamEndEvent):
            node = _compose_document(loader, len(text), limits, where, line_offset)
            out.append(loader.construct_document(node) if construct and node is not None else node)
        return out
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, where, line_offset, hint) from None
    finally:
        loader.dispose()


def compose_yaml(text: str, **kwargs: Any) -> Node | None:
    """The single document of ``text`` as a node graph (lines kept in marks), or None when empty."""
    docs = compose_yaml_all(text, **kwargs)
    if len(docs) > 1:
        second = docs[1]
        line = kwargs.get("line_offset", 0) + (second.start_mark.line + 1 if second is not None else 1)
        raise InputError(
            "expected one YAML document, found more ('---' inside it)",
            kwargs.get("hint", SYNTAX_HINT),
            path=_where(kwargs.get("path")),
            line=line,
        )
    return docs[0] if docs else None


def construct(node: Node | None, *, dates: bool = True) -> Any:
    """Python data for a node from ``compose_yaml`` (safe types only)."""
    if node is None:
        return None
    loader = _loader_class(dates)("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str, **kwargs: Any) -> Any:
    """The single document of ``text`` as Python data, under ``Limits``; InputError with the line."""
    node = compose_yaml(text, **kwargs)
    try:
        return construct(node, dates=kwargs.get("dates", True))
    except (yaml.YAMLError, ValueError) as exc:
        raise _syntax_error(exc, _where(kwargs.get("path")), kwargs.get("line_offset", 0), SYNTAX_HINT) from None  # type: ignore[arg-type]  # ValueError: no mark


def load_yaml_all(text: str, **kwargs: Any) -> list[Any]:
    """Every document of ``text`` as Python data (None for empty ones)."""
    return compose_yaml_all(text, construct=True, **kwargs)


def read_yaml(path: str | Path, *, hint: str = SYNTAX_HINT, **kwargs: Any) -> Any:
    """Read a UTF-8 YAML file and load it under ``Limits`` (size checked before reading it all)."""
    path = Path(path)
    limits: Limits = kwargs.get("limits", DEFAULT)
    _check_file_size(path, limits)
    return load_yaml(read_utf8(path), path=path, hint=hint, **kwargs)


def check_yaml_limits(text: str, *, path: str | Path | None = None, limits: Limits = DEFAULT) -> None:
    """Only the limits (size, depth, aliases, expansion) of every document in ``text``; raises
    ``InputLimitError``. A syntax error is left to the caller's own parser (ruamel.yaml reads
    YAML 1.2 where PyYAML reads 1.1), so this goes in front of any other YAML loader."""
    try:
        compose_yaml_all(text, path=path, limits=limits)
    except InputLimitError:
        raise
    except InputError:
        return


def check_json_limits(text: str | bytes, *, path: str | Path | None = None, limits: Limits = DEFAULT) -> None:
    """Only the limits of a JSON text (size, depth, number length, lone surrogates); syntax left to the caller."""
    try:
        load_json(text, path=path, limits=limits)
    except InputLimitError:
        raise
    except InputError:
        return


def load_yaml_roundtrip(
    text: str, *, path: str | Path | None = None, hint: str = SYNTAX_HINT, limits: Limits = DEFAULT
):
    """A user's config file with ruamel.yaml's round-trip loader (comments, order, quotes kept).

    The same limits are checked first on PyYAML's event stream, so ruamel never expands a bomb.
    Dump the result with ``dump_yaml_roundtrip``.
    """
    compose_yaml_all(text, path=path, limits=limits, hint=hint)
    yaml_rt = _ruamel()
    from ruamel.yaml.error import YAMLError as RuamelError

    try:
        return yaml_rt.load(text)
    except RuamelError as exc:
        raise _syntax_error(exc, _where(path), 0, hint) from None  # type: ignore[arg-type]  # ruamel's errors carry problem_mark, which _syntax_error reads


def dump_yaml_roundtrip(data: Any) -> str:
    """Text for data from ``load_yaml_roundtrip`` (unchanged parts keep their original text)."""
    import io

    buf = io.StringIO()
    _ruamel().dump(data, buf)
    return buf.getvalue()


def _ruamel() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:  # pragma: no cover - depends on the install
        from pipeline.errors import MissingDependencyError

        raise MissingDependencyError("ruamel.yaml", "change", "Editing a config file with its comments kept") from None
    y = YAML(typ="rt")
    y.preserve_quotes = True
    return y


# ---------------------------------------------------------------------------------------------
# JSON

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _NumberTooLong(ValueError):
    pass


def load_json(
    text: str | bytes,
    *,
    path: str | Path | None = None,
    limits: Limits = DEFAULT,
    hint: str = "Fix the JSON syntax at that line.",
) -> Any:
    """``json.loads`` under ``Limits``: size, depth, number length, lone surrogates; InputError."""
    where = _where(path)
    check_size(text, where, limits)
    if isinstance(text, bytes | bytearray):
        from pipeline.textio import decode_utf8

        text = decode_utf8(bytes(text), where or "<input>", "Send or save the JSON as UTF-8.", bom=True)
    cap = limits.max_number_chars

    def number(kind: type) -> Any:
        def parse(s: str) -> Any:
            if len(s) > cap:
                raise _NumberTooLong(f"a number with {len(s):,} characters (limit {cap})")
            return kind(s)

        return parse

    try:
        data = json.loads(text, parse_int=number(int), parse_float=number(float))
    except _NumberTooLong as exc:
        raise InputLimitError(f"the JSON holds {exc}", LIMIT_HINT, path=where) from None
    except RecursionError:
        raise InputLimitError(
            f"the JSON is nested more than {limits.max_depth} levels deep", LIMIT_HINT, path=where
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", hint, path=where, line=exc.lineno, column=exc.colno) from None
    _check_tree(data, limits, where, surrogates=bool(_SURROGATE_ESCAPE.search(text)))
    return data


def read_json(path: str | Path, *, limits: Limits = DEFAULT, hint: str = "Fix the JSON syntax at that line.") -> Any:
    """Read a JSON file under ``Limits`` (its size checked before it is read)."""
    path = Path(path)
    _check_file_size(path, limits)
    return load_json(path.read_bytes(), path=path, limits=limits, hint=hint)


def _check_tree(data: Any, limits: Limits, where: str | None, *, surrogates: bool) -> None:
    """Depth of ``data`` (iteratively) and, when the text escaped any, lone surrogates in strings."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            items: Any = value.values()
            if surrogates:
                for key in value:
                    _check_text(key, where)
        elif isinstance(value, list):
            items = value
        else:
            if surrogates and isinstance(value, str):
                _check_text(value, where)
            continue
        if depth > limits.max_depth:
            raise InputLimitError(
                f"the JSON is nested more than {limits.max_depth} levels deep", LIMIT_HINT, path=where
            )
        stack.extend((v, depth + 1) for v in items if isinstance(v, dict | list) or (surrogates and isinstance(v, str)))


def _check_text(value: str, where: str | None) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"a JSON string holds a lone UTF-16 surrogate (\\u{ord(value[exc.start]):04x}), which is not text",
            "Send valid Unicode text: a \\ud800-\\udfff escape must be half of a surrogate pair.",
            path=where,
        ) from None


def _check_file_size(path: Path, limits: Limits) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        return  # the reader reports the missing file
    if size > limits.max_bytes:
        raise InputLimitError(f"the file is {size:,} bytes (limit {limits.max_bytes:,})", LIMIT_HINT, path=str(path))


__all__ = [
    "Limits",
    "DEFAULT",
    "LIMIT_HINT",
    "compose_yaml",
    "compose_yaml_all",
    "construct",
    "load_yaml",
    "load_yaml_all",
    "read_yaml",
    "load_yaml_roundtrip",
    "dump_yaml_roundtrip",
    "load_json",
    "read_json",
]
