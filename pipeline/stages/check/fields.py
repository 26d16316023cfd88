"""Front-matter fields for ``kb check``: pydantic validates, we translate its errors into rules.

``add(rule, line, message, hint, column=..., severity=...)`` records a finding (see check.py).
Sources are validated one by one against the model their keys name (``interview`` or
``document``), so an error names the right fields instead of both union members.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rapidfuzz import fuzz, process, utils

from pipeline import atoms
from pipeline.models import (
    ATOM_TYPES,
    GENERATOR_KINDS,
    STATUSES,
    AtomMeta,
    DocumentSource,
    Generator,
    InterviewSource,
)

_ENUMS: dict[tuple, tuple[str, ...]] = {
    ("type",): ATOM_TYPES,
    ("status",): STATUSES,
    ("generator", "kind"): GENERATOR_KINDS,
}
_FIELDS: dict[tuple, tuple[str, ...]] = {
    (): tuple(AtomMeta.model_fields),
    ("generator",): tuple(Generator.model_fields),
}
_SOURCE_FIELDS = tuple(dict.fromkeys([*InterviewSource.model_fields, *DocumentSource.model_fields]))
_TYPE_NAMES = {
    "string_type": "text",
    "list_type": "a list, e.g. [a, b]",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a mapping of fields",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def check_fields(raw: atoms.RawAtom, data: dict, add: Any) -> None:
    """Validate the front matter with the pydantic models; report each error as a rule at its line."""
    top = dict(data)
    sources = top.pop("sources", None)
    try:
        AtomMeta.model_validate(top)
    except ValidationError as exc:
        for err in exc.errors():
            _field_error(raw, err, tuple(err["loc"]), data, add, _FIELDS)
    if sources is None:
        return
    if not isinstance(sources, list):
        add(
            "wrong-type",
            raw.lines.get(("sources",)),
            "field 'sources' must be a list of sources",
            "Write each source as a list item ('- interview: ...' or '- document: ...').",
        )
        return
    for i, item in enumerate(sources):
        loc = ("sources", i)
        if not isinstance(item, dict):
            add(
                "wrong-type",
                atoms.line_of(raw, loc),
                f"sources[{i}] must be a mapping of fields",
                "Give either interview, speaker, start, end, quote or document, heading.",
            )
            continue
        model = InterviewSource if "interview" in item else DocumentSource if "document" in item else None
        if model is None:
            add(
                "missing-field",
                atoms.line_of(raw, loc),
                f"sources[{i}] names neither an interview nor a document",
                "Add 'interview: <id>' (with speaker, start, end, quote) or 'document: <path>' (with heading).",
            )
            continue
        try:
            model.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                fields = {loc: tuple(model.model_fields)}
                _field_error(raw, err, loc + tuple(err["loc"]), data, add, fields)


def _name(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field_error(raw: atoms.RawAtom, err: dict, loc: tuple, data: dict, add: Any, fields: dict) -> None:
    kind = err["type"]
    name = _name(loc)
    line = atoms.line_of(raw, loc)
    value = err.get("input")
    if kind == "missing":
        parent = loc[:-1]
        add(
            "missing-field",
            atoms.line_of(raw, parent) if parent else 1,
            f"required field '{name}' is missing",
            f"Add '{loc[-1]}: ...' to the front matter.",
        )
    elif kind == "extra_forbidden":
        valid = fields.get(loc[:-1]) or _SOURCE_FIELDS
        best = process.extractOne(str(loc[-1]), valid, scorer=fuzz.WRatio, processor=utils.default_process)
        hint = f"Did you mean '{best[0]}'?" if best and best[1] >= 60 else f"Valid fields: {', '.join(valid)}."
        add("unknown-field", line, f"unknown field '{name}'", hint + " Unknown fields are not allowed.")
    elif kind == "literal_error" and loc in _ENUMS:
        allowed = _ENUMS[loc]
        best = process.extractOne(str(value), allowed, scorer=fuzz.WRatio, processor=utils.default_process)
        hint = f"Did you mean '{best[0]}'? " if best else ""
        add("unknown-enum", line, f"unknown {name} '{value}'", f"{hint}Allowed: {', '.join(allowed)}.")
    elif loc and loc[-1] in ("created", "updated") and len(loc) == 1:
        add(
            "invalid-date",
            line,
            f"{name} '{value}' is not a valid date ({err['msg'].lower()})",
            "Write an existing date as YYYY-MM-DD, e.g. 2026-03-04.",
        )
    elif loc == ("id",) and kind == "string_pattern_mismatch":
        add(
            "invalid-id",
            line,
            f"id '{value}' is not a lowercase slug",
            f"Use lowercase letters, digits and hyphens, e.g. '{atoms.slugify(str(value))}'.",
        )
    elif kind in _TYPE_NAMES or kind.endswith("_type"):
        want = _TYPE_NAMES.get(kind, kind.replace("_type", ""))
        add(
            "wrong-type",
            line,
            f"field '{name}' must be {want}, not {_describe(value)}",
            f"Write '{loc[-1]}' as {want}.",
        )
    else:
        msg = err["msg"].removeprefix("Value error, ")
        add("invalid-value", line, f"field '{name}': {msg}", "Correct the value.")


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"text '{value}'" if len(value) < 40 else "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
