"""A change is one *recipe*: a selection (file glob + predicates on each document) and edits.

The same recipe comes from three places: the command line (``--where``/``--set``/``--delete``/
``--append``), a YAML file (``--recipe FILE``, what every plan saves so it can be replayed), or
the LLM (one structured call from the instruction). Values are parsed as YAML 1.2, so ``2.5`` is
a number, ``'2.5'`` a string and ``yes`` a string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.change import paths
from pipeline.errors import InputError
from pipeline.textio import read_utf8


class Predicate(BaseModel):
    """One test on a document; a document is selected when all of them hold."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Dot path (metadata.labels.team, a.b[0]) or JSON Pointer (/metadata/labels/team).")
    test: Literal["equals", "prefix", "exists"] = Field(
        description="equals: the value equals `value`; prefix: a string starting with `value`; exists: present."
    )
    value: Any = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _checked_path(v)

    def holds(self, doc: Any) -> bool:
        found = paths.get(doc, paths.parse(self.path))
        if found is paths.MISSING:
            return False
        if self.test == "exists":
            return True
        if self.test == "prefix":
            return isinstance(found, str) and found.startswith(str(self.value))
        return paths.same(found, self.value) or (isinstance(found, str) and found == self.value)

    def __str__(self) -> str:
        if self.test == "exists":
            return self.path
        return f"{self.path}{'=' if self.test == 'equals' else '^='}{dump_value(self.value)}"


class Op(BaseModel):
    """One edit, JSON-Patch-like: set (replace or create), add (list insert / `-` append), remove,
    append (add at the end of a list unless present) or test (a precondition: skip the document
    unless the value equals)."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["set", "add", "remove", "append", "test"]
    path: str
    value: Any = None

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _checked_path(v)

    def __str__(self) -> str:
        if self.op == "remove":
            return f"remove {self.path}"
        return f"{self.op} {self.path} = {dump_value(self.value)}"


class Recipe(BaseModel):
    """Selection + edits. ``files`` globs are relative to the folder the plan is made from."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field("", description="What the change is for, in one line.")
    files: list[str] = Field(default_factory=list, description="Glob patterns of the files to consider.")
    where: list[Predicate] = Field(default_factory=list, description="All must hold for a document to be edited.")
    ops: list[Op] = Field(default_factory=list, description="Edits applied in order to each selected document.")

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("where", mode="before")
    @classmethod
    def _where(cls, v: Any) -> Any:
        return [parse_where(x) if isinstance(x, str) else x for x in (v or [])]

    @model_validator(mode="after")
    def _some_edit(self) -> Recipe:
        if not any(o.op != "test" for o in self.ops):
            raise ValueError("a recipe needs at least one edit (set, add, remove or append)")
        return self


def _checked_path(v: str) -> str:
    try:
        paths.parse(v)
    except InputError as exc:
        raise ValueError(exc.message) from None
    return v


def parse_value(text: str) -> Any:
    """A command-line VALUE, parsed as YAML 1.2 (``2.5`` a number, ``'2.5'`` a string)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from pipeline import safeload

    safeload.check_yaml_limits(text)
    try:
        return YAML(typ="safe", pure=True).load(text) if text.strip() else ""
    except YAMLError as exc:
        raise InputError(
            f"value {text!r} is not valid YAML: {str(exc).splitlines()[0]}", "Quote it: --set 'PATH=\"a: b\"'."
        ) from None


def dump_value(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value


def parse_where(text: str) -> Predicate:
    """``PATH=VALUE`` (equals), ``PATH^=PREFIX`` (starts with) or ``PATH`` (exists)."""
    key, sep, value = _split(text, ("^=", "="))
    if not sep:
        return Predicate(path=key, test="exists")
    if sep == "^=":
        return Predicate(path=key, test="prefix", value=value)
    return Predicate(path=key, test="equals", value=parse_value(value))


def _split(text: str, seps: tuple[str, ...]) -> tuple[str, str, str]:
    """Split at the first unescaped separator (a ``\\=`` stays in the key)."""
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        for sep in seps:
            if text.startswith(sep, i):
                return text[:i].replace("\\=", "="), sep, text[i + len(sep) :]
        i += 1
    return text.replace("\\=", "="), "", ""


def from_flags(
    *,
    files: list[str],
    where: list[str],
    set_: list[str],
    delete: list[str],
    append: list[str],
    description: str = "",
) -> Recipe | None:
    """The recipe the command line gives, or None when it gives no edit."""
    ops: list[Op] = []
    try:
        for item in set_:
            key, sep, value = _split(item, ("=",))
            if not sep:
                raise InputError(f"--set {item!r}: expected PATH=VALUE", "Write --set metadata.labels.team=payments.")
            ops.append(Op(op="set", path=key, value=parse_value(value)))
        for item in append:
            key, sep, value = _split(item, ("=",))
            if not sep:
                raise InputError(
                    f"--append {item!r}: expected PATH=VALUE",
                    "Write --append spec.syncPolicy.syncOptions=PruneLast=true.",
                )
            ops.append(Op(op="append", path=key, value=parse_value(value)))
        ops += [Op(op="remove", path=p) for p in delete]
        preds = [parse_where(w) for w in where]
        if not ops:
            return None
        return Recipe(description=description, files=files, where=preds, ops=ops)
    except ValidationError as exc:
        raise InputError(_brief(exc), "Check the paths: dot notation (a.b[0]) or a JSON Pointer (/a/b/0).") from None


def load(path: Path) -> Recipe:
    """A recipe file (YAML): description, files, where, ops."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from pipeline import safeload

    text = read_utf8(path, "Re-save the recipe as UTF-8.")
    safeload.check_yaml_limits(text, path=path)
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise InputError(
            f"the recipe is not valid YAML: {str(exc).splitlines()[0]}", "Fix its syntax.", path=path
        ) from None
    if not isinstance(data, dict):
        raise InputError("a recipe is a mapping with where: and ops:", "See `kb change plan --help`.", path=path)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            f"invalid recipe: {_brief(exc)}", "A recipe has description, files, where and ops.", path=path
        ) from None


def _brief(exc: ValidationError) -> str:
    out = []
    for e in exc.errors()[:4]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        out.append(f"{where}: {msg}" if where else msg)
    return "; ".join(out)
