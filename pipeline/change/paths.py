"""Paths into a document: dot notation (``metadata.labels.team``, ``a.b[0]``, ``\\.`` for a dot
inside a key) or a JSON Pointer (``/spec/sources/0``), and the few edits the engine makes.

Stdlib only, so recipes can be parsed and checked without ruamel.yaml; the edit functions work on
any ``dict``/``list`` (ruamel's CommentedMap/CommentedSeq included, whose comments then survive).
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.errors import InputError

Part = str | int

_BRACKET = re.compile(r"\[(\d+)\]")


class Unsafe(Exception):
    """The engine cannot tell that this edit is safe for this document: skip it and say why."""


def parse(path: str) -> tuple[Part, ...]:
    """``metadata.labels.team`` / ``a.b[0]`` / ``/a/b~1c/0`` -> the path's parts (ints index lists)."""
    if not isinstance(path, str) or not path.strip():
        raise InputError("an empty path", "Write a path like metadata.labels.team or /metadata/labels/team.")
    if path.startswith("/"):
        return tuple(_pointer_part(p) for p in path[1:].split("/"))
    parts: list[Part] = []
    key, i = "", 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path) and path[i + 1] in ".[\\":
            key += path[i + 1]
            i += 2
            continue
        if ch == ".":
            _push(parts, key, path)
            key = ""
        elif ch == "[":
            m = _BRACKET.match(path, i)
            if not m:
                raise InputError(
                    f"path '{path}': '[' must be followed by a list index like [0]", "Escape a literal bracket as \\[."
                )
            if key:
                parts.append(key)
                key = ""
            parts.append(int(m.group(1)))
            i = m.end()
            if i < len(path) and path[i] == ".":
                i += 1
            continue
        else:
            key += ch
        i += 1
    if key or not parts:
        _push(parts, key, path)
    return tuple(parts)


def _push(parts: list[Part], key: str, path: str) -> None:
    if key == "":
        raise InputError(f"path '{path}' has an empty key", "Write keys between the dots; escape a dot in a key as \\.")
    parts.append(key)


def _pointer_part(raw: str) -> Part:
    text = raw.replace("~1", "/").replace("~0", "~")
    return int(text) if text.isdigit() and text == str(int(text)) else text


def to_pointer(parts: tuple[Part, ...]) -> str:
    """The JSON Pointer spelling of ``parts`` (what plans and messages show)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# ---------------------------------------------------------------------------------------------
# reading


_MISSING = object()


def get(doc: Any, parts: tuple[Part, ...]) -> Any:
    """The value at ``parts`` or ``MISSING``."""
    cur = doc
    for part in parts:
        cur = _child(cur, part)
        if cur is _MISSING:
            return _MISSING
    return cur


MISSING = _MISSING


def _child(node: Any, part: Part) -> Any:
    if isinstance(node, dict):
        if part in node:
            return node[part]
        return node.get(str(part), _MISSING) if isinstance(part, int) else _MISSING
    if isinstance(node, list) and isinstance(part, int):
        return node[part] if 0 <= part < len(node) else _MISSING
    return _MISSING


# ---------------------------------------------------------------------------------------------
# edits: each returns True when the document changed, raises Unsafe when it cannot tell


def _parent(doc: Any, parts: tuple[Part, ...], create: bool, new_map: Any) -> Any:
    """The container holding the last part; missing maps are created when ``create``."""
    cur = doc
    for depth, part in enumerate(parts[:-1]):
        nxt = _child(cur, part)
        if nxt is _MISSING:
            if not create or not isinstance(cur, dict):
                raise Unsafe(f"{to_pointer(parts[: depth + 1])} does not exist")
            nxt = new_map()
            cur[part] = nxt
        elif not isinstance(nxt, (dict, list)):
            raise Unsafe(f"{to_pointer(parts[: depth + 1])} is a {_kind(nxt)}, not a mapping or list")
        cur = nxt
    return cur


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return type(value).__mro__[-2].__name__ if type(value).__module__.startswith("ruamel") else type(value).__name__


def same(a: Any, b: Any) -> bool:
    """Equal as data: ``True`` is not ``1`` and ``1`` is not ``1.0`` (YAML writes them differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and _kind(a) == _kind(b)


def set_value(doc: Any, parts: tuple[Part, ...], value: Any, new_map: Any = dict, restyle: Any = None) -> bool:
    """Set (replace or create) the value at ``parts``, creating missing parent maps."""
    parent = _parent(doc, parts, True, new_map)
    last = parts[-1]
    if isinstance(parent, list):
        if not isinstance(last, int) or not 0 <= last < len(parent):
            raise Unsafe(f"{to_pointer(parts)}: index out of range (the list has {len(parent)} items)")
        old = parent[last]
    else:
        old = parent.get(last, _MISSING)
    if old is not _MISSING:
        if same(old, value):
            return False
        if isinstance(old, (dict, list)) != isinstance(value, (dict, list)):
            raise Unsafe(f"{to_pointer(parts)} holds a {_kind(old)}; replacing it with a {_kind(value)} may lose data")
        if restyle is not None:
            value = restyle(old, value)
    parent[last] = value
    return True


def add_value(doc: Any, parts: tuple[Part, ...], value: Any, new_map: Any = dict) -> bool:
    """JSON Patch ``add``: set a key, insert into a list at an index, or append at ``-``."""
    parent = _parent(doc, parts, True, new_map)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
            return True
        if not isinstance(last, int) or not 0 <= last <= len(parent):
            raise Unsafe(f"{to_pointer(parts)}: cannot insert there (the list has {len(parent)} items)")
        parent.insert(last, value)
        return True
    return set_value(doc, parts, value, new_map)


def remove_value(doc: Any, parts: tuple[Part, ...]) -> bool:
    """Remove the key or item at ``parts``; nothing to remove is no change."""
    try:
        parent = _parent(doc, parts, False, dict)
    except Unsafe:
        return False
    last = parts[-1]
    if isinstance(parent, list):
        if isinstance(last, int) and 0 <= last < len(parent):
            del parent[last]
            return True
        return False
    if last in parent:
        del parent[last]
        return True
    return False


def append_value(doc: Any, parts: tuple[Part, ...], value: Any, new_map: Any = dict, new_list: Any = list) -> bool:
    """Add ``value`` at the end of the list at ``parts`` unless it is there already (list and maps created)."""
    parent = _parent(doc, parts, True, new_map)
    last = parts[-1]
    current = _child(parent, last)
    if current is _MISSING or current is None:
        if isinstance(parent, list):
            raise Unsafe(f"{to_pointer(parts)} does not exist")
        seq = new_list()
        seq.append(value)
        parent[last] = seq
        return True
    if not isinstance(current, list):
        raise Unsafe(f"{to_pointer(parts)} is a {_kind(current)}, not a list")
    if any(same(item, value) for item in current):
        return False
    current.append(value)
    return True
