"""Front matter: split a file into its YAML and body, parse the YAML keeping every key's line.

Dates stay strings while loading (pydantic parses them and reports impossible dates with the
field); parsing goes through ``pipeline.safeload`` (alias, depth and size limits)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import frontmatter
import yaml

from pipeline import safeload
from pipeline.errors import InputError, InputLimitError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLoader(_BaseLoader):  # type: ignore[misc, valid-type]  # a run-time choice of base (C or Python loader)
    """Safe YAML loader (C-accelerated when available) that keeps dates as strings."""


YamlLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}

_HANDLER = frontmatter.YAMLHandler()
#: Front matter is a few dozen short fields: anchors are never needed, so at most a few aliases.
FRONT_MATTER_LIMITS = safeload.Limits(max_bytes=256 * 1024, max_aliases=20, max_depth=32)
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
    """Parse ``raw.front_matter`` into ``raw.data`` and ``raw.lines``; raise InputError with a line.

    Through ``pipeline.safeload`` (alias, expansion, depth and size limits): a YAML bomb in the
    front matter is the same error here, in ``kb check``, ``kb export`` and ``kb site``.
    """
    assert raw.front_matter is not None
    hint = "Fix the YAML syntax (quote values holding ': ' or '#', indent lists consistently)."
    try:
        node = safeload.compose_yaml(
            raw.front_matter, line_offset=raw.fm_line - 1, dates=False, hint=hint, limits=FRONT_MATTER_LIMITS
        )
        raw.data = safeload.construct(node, dates=False)
    except InputLimitError:
        raise
    except InputError as exc:
        raise InputError(
            exc.message.replace("not valid YAML: ", "front matter is not valid YAML: ", 1),
            hint,
            line=exc.line if exc.line is not None else raw.fm_line,
            column=exc.column,
        ) from None
    except (yaml.YAMLError, ValueError) as exc:  # a constructor error (e.g. an unknown tag)
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"front matter is not valid YAML: {getattr(exc, 'problem', None) or exc}",
            hint,
            line=raw.fm_line + mark.line if mark else raw.fm_line,
            column=mark.column + 1 if mark else None,
        ) from None
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
