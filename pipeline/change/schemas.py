"""The target system's config schemas, registered in the workspace: ``schemas/configs/<name>.json``
(imported, not generated) and ``schemas/configs/targets.yaml`` (which files each one validates).

``kb schemas add FILE.json... [--for GLOB]`` writes both; ``kb change`` and ``kb setup`` look a
file's schema up here; ``kb check`` resolves ``config_schema`` and ``applies_to`` against them.
A CustomResourceDefinition (YAML) may be given instead of a JSON Schema: its first version's
``openAPIV3Schema`` is registered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline import safeload
from pipeline.errors import InputError, NotFoundError
from pipeline.textio import read_utf8
from pipeline.workspace import Workspace, atomic_write_text

TARGETS = "targets.yaml"
_NAME = re.compile(r"[A-Za-z0-9._-]+")


def configs_dir(workspace: Workspace) -> Path:
    return workspace.schemas_dir / "configs"


@dataclass
class Added:
    name: str
    path: Path
    changed: bool
    globs: list[str]


def add(workspace: Workspace, files: list[Path], for_globs: list[str] | None = None) -> list[Added]:
    """Register each schema file (validated as a JSON Schema first); ``for_globs`` name the files
    (relative to the workspace) they validate."""
    out: list[Added] = []
    targets = read_targets(workspace)
    for file in files:
        schema = _read_schema(file)
        name = _name_of(file)
        dest = configs_dir(workspace) / f"{name}.json"
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        changed = not dest.is_file() or dest.read_text(encoding="utf-8") != text
        if changed:
            atomic_write_text(dest, text)
        globs = list(targets.get(name, []))
        for g in for_globs or []:
            if g not in globs:
                globs.append(g)
        if globs:
            targets[name] = globs
        out.append(Added(name, dest, changed, globs))
    if any(a.globs for a in out):
        atomic_write_text(configs_dir(workspace) / TARGETS, _targets_text(targets))
    return out


def _targets_text(targets: dict[str, list[str]]) -> str:
    head = "# Which files each schema in this folder validates (globs relative to the workspace); see `kb schemas add --for`.\n"
    return head + yaml.safe_dump(dict(sorted(targets.items())), sort_keys=True, allow_unicode=True)


def _name_of(file: Path) -> str:
    name = file.name
    for suffix in (".json", ".yaml", ".yml"):
        name = name.removesuffix(suffix)
    name = name.removesuffix(".schema")
    if not _NAME.fullmatch(name):
        raise InputError(
            f"'{file.name}' does not make a schema name (letters, digits, '.', '_', '-')", "Rename the file."
        )
    return name


def _read_schema(file: Path, check: bool = True) -> dict[str, Any]:
    import jsonschema

    if not file.is_file():
        raise NotFoundError(f"schema file '{file}' does not exist.", "Give the path of a JSON Schema file.")
    text = read_utf8(file, "Re-save the schema as UTF-8.")
    (safeload.check_json_limits if file.suffix == ".json" else safeload.check_yaml_limits)(text, path=file)
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(
            f"not valid JSON/YAML: {' '.join(str(exc).split())[:200]}", "Fix the file.", path=file
        ) from None
    if isinstance(data, dict) and data.get("kind") == "CustomResourceDefinition":
        data = _from_crd(data, file)
    if not isinstance(data, dict):
        raise InputError("a JSON Schema is an object", "Give a JSON Schema file.", path=file)
    try:
        if check:  # checked once when registered: a meta-schema pass over a big CRD takes seconds
            jsonschema.validators.validator_for(data).check_schema(data)
    except jsonschema.SchemaError as exc:
        raise InputError(f"not a valid JSON Schema: {exc.message}", "Fix the schema.", path=file) from None
    return data


def _from_crd(crd: dict[str, Any], file: Path) -> dict[str, Any]:
    try:
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
    except (KeyError, IndexError, TypeError):
        raise InputError(
            "the CRD has no spec.versions[0].schema.openAPIV3Schema", "Give a JSON Schema instead.", path=file
        ) from None
    kind = crd.get("spec", {}).get("names", {}).get("kind", "")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{kind} ({crd['spec'].get('group', '')}/{version.get('name', '')}) from its CRD",
        **schema,
    }


def read_targets(workspace: Workspace) -> dict[str, list[str]]:
    path = configs_dir(workspace) / TARGETS
    if not path.is_file():
        return {}
    text = read_utf8(path, "Re-save it as UTF-8.")
    safeload.check_yaml_limits(text, path=path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(
            f"not valid YAML: {' '.join(str(exc).split())[:200]}", "Fix it, or re-run kb schemas add --for.", path=path
        ) from None
    if not isinstance(data, dict):
        raise InputError("must map schema names to lists of globs", "Re-run kb schemas add --for.", path=path)
    return {str(k): [str(g) for g in (v if isinstance(v, list) else [v])] for k, v in data.items()}


def names(workspace: Workspace) -> list[str]:
    folder = configs_dir(workspace)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` any folders, ``*`` and ``?`` within one name."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def registered_for(workspace: Workspace, file: Path, targets: dict[str, list[str]] | None = None) -> str | None:
    """The name of the schema registered (``--for``) for ``file``, if any."""
    targets = read_targets(workspace) if targets is None else targets
    if not targets:
        return None
    rel = workspace.relative(file).replace("\\", "/")
    for name, globs in targets.items():
        for g in globs:
            rx = glob_regex(g)
            if rx.match(rel) or ("/" not in g and rx.match(file.name)):
                return name
    return None


def resolve(workspace: Workspace, given: str) -> tuple[str, Path]:
    """``--schema FILE|NAME`` -> (name, path of the JSON Schema)."""
    p = Path(given)
    if p.suffix in (".json", ".yaml", ".yml") and p.is_file():
        return _name_of(p), p
    if _NAME.fullmatch(given):
        path = configs_dir(workspace) / f"{given}.json"
        if path.is_file():
            return given, path
    known = names(workspace)
    raise NotFoundError(
        f"schema '{given}' is neither a file nor registered in {workspace.relative(configs_dir(workspace))}/",
        ("registered: " + ", ".join(known)) if known else "Register one with `kb schemas add FILE.json --for GLOB`.",
    )


_VALIDATORS: dict[tuple[str, float], Any] = {}


def validator(path: Path) -> Any:
    """A jsonschema validator for the schema at ``path`` (built once per file version)."""
    import jsonschema

    key = (str(path.resolve()), path.stat().st_mtime)
    v = _VALIDATORS.get(key)
    if v is None:
        registered = path.resolve().parent.name == "configs"
        schema = _read_schema(path, check=not registered)
        v = jsonschema.validators.validator_for(schema)(schema)
        _VALIDATORS[key] = v
    return v


def errors(v: Any, doc: Any, limit: int = 10) -> list[str]:
    """The validator's messages, each prefixed by the JSON Pointer it is about."""
    out = []
    for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))[:limit]:
        where = "".join("/" + str(p) for p in e.absolute_path) or "/"
        out.append(f"{where}: {e.message}")
    return out
