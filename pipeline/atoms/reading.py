"""Reading an atom file: text -> validated ``Atom``, or an InputError with the file and line."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from pipeline.atoms.body import parse_body
from pipeline.atoms.front import line_of, load_yaml, split
from pipeline.errors import InputError
from pipeline.models import Atom, AtomMeta
from pipeline.textio import read_utf8


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
