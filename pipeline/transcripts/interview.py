"""``interviews/<id>/interview.yaml``: read with file:line errors, write readable YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.errors import InputError, NotFoundError
from pipeline.models import Interview
from pipeline.textio import read_utf8


class _Loader(yaml.SafeLoader):
    pass


# Dates stay strings while loading; pydantic parses them and reports an impossible date by field.
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _lines(node: yaml.Node, prefix: tuple, out: dict[tuple, int]) -> None:
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*prefix, key.value)] = key.start_mark.line + 1
            _lines(value, (*prefix, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*prefix, i), out)


def key_lines(text: str) -> dict[tuple, int]:
    """Key path (e.g. ('people', 0, 'name')) -> line, for messages about interview.yaml."""
    out: dict[tuple, int] = {}
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return out
    if node is not None:
        _lines(node, (), out)
    return out


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def load(path: Path, *, check_id: bool = True) -> Interview:
    """Parse and validate interview.yaml; the folder name must equal its id (unless ``check_id`` is off)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist.", "Create the interview with 'kb add RECORDING_OR_TRANSCRIPT'.")
    text = read_utf8(path, "Re-save interview.yaml as UTF-8.")
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InputError(
            f"not valid YAML ({exc.problem})", "Fix the YAML syntax at that line.", path=path, line=line
        ) from None
    if not isinstance(data, dict):
        raise InputError("interview.yaml must be a mapping", "See README: Interviews.", path=path, line=1)
    try:
        interview = Interview.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(
            f"'{loc}': {err['msg']}",
            "Fix this field (schemas/interview.json describes every field).",
            path=path,
            line=line_of(key_lines(text), err["loc"]),
        ) from None
    if check_id and interview.id != path.parent.name:
        raise InputError(
            f"id '{interview.id}' differs from the folder name '{path.parent.name}'",
            "Make them equal (the folder name is the interview id atoms cite).",
            path=path,
            line=line_of(key_lines(text), ("id",)),
        )
    return interview


def dump(interview: Interview) -> str:
    """YAML a person can edit: fixed key order, every field shown (defaults included)."""
    data: dict[str, Any] = interview.model_dump(mode="json")
    header = (
        "# Interview metadata (kb). people: name, role (interviewer|expert), title, aliases.\n"
        "# speaker_map maps raw transcript labels (SPEAKER_00, VTT names) to people's names.\n"
        "# Schema: schemas/interview.json\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
