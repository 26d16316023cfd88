"""Round-trip loading and dumping of config files: YAML through ruamel.yaml (comments, key order
and quoting of untouched parts kept; every document of a multi-document file on its own), JSON
through the stdlib (kept JSON, with its indentation).

``load`` returns a ``Loaded`` whose ``dump`` writes the documents back in the file's own style.
The engine calls ``dump`` on the unedited documents first: when that does not reproduce the file
byte for byte, an edit would also rewrite untouched lines, so the file is skipped ("do no harm").
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.errors import MissingDependencyError

_YAMLS: dict[tuple, Any] = {}
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s\[\]{},]+")


class Unreadable(Exception):
    """The file does not parse (the message says where); the engine skips it with that reason."""


@dataclass
class Loaded:
    kind: str  # yaml | json
    docs: list[Any]
    dump: Callable[[list[Any]], str]
    anchors: bool = False


def _ruamel() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise MissingDependencyError("ruamel.yaml", "change", "Round-trip YAML editing (kb change, kb setup)") from None
    return YAML


def yaml_for(mapping: int, sequence: int, offset: int, explicit_start: bool) -> Any:
    """A configured round-trip ruamel YAML instance (cached: building one is not free)."""
    key = (mapping, sequence, offset, explicit_start)
    y = _YAMLS.get(key)
    if y is None:
        y = _ruamel()(typ="rt")
        y.preserve_quotes = True
        y.width = 4096  # never re-wrap long lines
        y.indent(mapping=mapping, sequence=sequence, offset=offset)
        y.explicit_start = explicit_start
        _YAMLS[key] = y
    return y


_OPENS = re.compile(r"^[^#]*:\s*(#.*)?$")


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel wants them, from the first nested key and list item."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "---"))]
    mapping = offset = None
    for line, nxt in zip(lines, lines[1:], strict=False):
        stripped = line.lstrip(" ")
        dash = stripped.startswith("- ")
        key_indent = len(line) - len(stripped) + (2 if dash else 0)
        if not _OPENS.match(stripped[2:] if dash else stripped):
            continue
        n_stripped = nxt.lstrip(" ")
        n_indent = len(nxt) - len(n_stripped)
        if n_stripped.startswith("- "):
            if offset is None and n_indent >= key_indent:
                offset = n_indent - key_indent
        elif mapping is None and n_indent > key_indent:
            mapping = n_indent - key_indent
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = offset or 0
    return mapping, offset + 2, offset


def load(text: str, name: str) -> Loaded:
    """Parse ``text`` (``name`` decides JSON or YAML); raises ``Unreadable`` with the reason."""
    if name.lower().endswith(".json"):
        return _load_json(text)
    return _load_yaml(text)


def _load_yaml(text: str) -> Loaded:
    from ruamel.yaml.error import YAMLError

    _limits(text, yaml=True)
    mapping, sequence, offset = guess_indent(text)
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    y = yaml_for(mapping, sequence, offset, first.startswith("---"))
    try:
        docs = list(y.load_all(text))
    except YAMLError as exc:
        raise Unreadable(f"does not parse as YAML: {' '.join(str(exc).split())[:200]}") from None

    def dump(documents: list[Any]) -> str:
        out = io.StringIO()
        if len(documents) == 1:
            y.dump(documents[0], out)
        else:
            y.dump_all(documents, out)
        return out.getvalue()

    return Loaded("yaml", docs, dump, anchors=bool(_ANCHOR.search(text)))


def _limits(text: str, *, yaml: bool) -> None:
    """kb's one loading policy (pipeline.safeload) before the round-trip parser: a bomb is skipped, never expanded."""
    from pipeline import safeload
    from pipeline.errors import InputLimitError

    try:
        (safeload.check_yaml_limits if yaml else safeload.check_json_limits)(text)
    except InputLimitError as exc:
        raise Unreadable(f"{exc.message} ({safeload.LIMIT_HINT})") from None


def _load_json(text: str) -> Loaded:
    _limits(text, yaml=False)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"does not parse as JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    indent_match = re.search(r"\n( +|\t)\S", text)
    indent: Any = None
    if indent_match:
        ws = indent_match.group(1)
        indent = "\t" if ws == "\t" else len(ws)
    ascii_only = "\\u" in text
    trailing = text[len(text.rstrip("\n")) :]

    def dump(documents: list[Any]) -> str:
        seps = (",", ": ") if indent is not None else ((", ", ": ") if ", " in text else (",", ":"))
        return json.dumps(documents[0], indent=indent, ensure_ascii=ascii_only, separators=seps) + trailing

    return Loaded("json", [doc], dump)


def plain(value: Any) -> Any:
    """A JSON-ready copy for jsonschema (ruamel's timestamps become ISO strings)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def restyle(old: Any, new: Any) -> Any:
    """A new string written in the quoting of the one it replaces (``"v1"`` stays double-quoted)."""
    if isinstance(new, str) and isinstance(old, str) and type(old) is not str:
        try:
            return type(old)(new)
        except TypeError:
            return new
    return new


def new_map() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def new_list() -> Any:
    from ruamel.yaml.comments import CommentedSeq

    return CommentedSeq()
