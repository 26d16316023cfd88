"""Config blocks of ``config-template`` atoms for ``kb check``: parse, then validate with jsonschema.

Errors point into the file: a syntax error at its line and column inside the fenced block, a
schema error at the line of the offending key (found by following the error's path through the
YAML nodes of the block). Validators are built once per schema name and run.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from pipeline import atoms, safeload
from pipeline.errors import InputError, InputLimitError
from pipeline.stages.check.scan import norm_heading

_CONFIG_LANGS = {"yaml": "yaml", "yml": "yaml", "json": "json"}


def check_configs(ctx: Any, raw: atoms.RawAtom, data: dict, code: list, review_sev: str, add: Any) -> None:
    """config-no-block, config-parse and config-schema for a config-template atom."""
    blocks = [b for b in code if b.lang in _CONFIG_LANGS]
    if not blocks:
        add(
            "config-no-block",
            raw.body_line,
            "a config-template without a fenced yaml or json block",
            "Put the template in a fenced block: ```yaml ... ```.",
            severity=review_sev,
        )
        return
    parsed: list[tuple[Any, Any, Any]] = []  # (block, value, yaml node for line lookup)
    file_lines = raw.text.split("\n")
    for block in blocks:
        fence = file_lines[block.line - 2] if 0 <= block.line - 2 < len(file_lines) else ""
        value, node = _parse_block(block, len(fence) - len(fence.lstrip(" ")), add)
        if node is not None or value is not None:
            parsed.append((block, value, node))
    name = data.get("config_schema")
    if not isinstance(name, str) or not name.strip():
        return
    validator = _validator(ctx, name.strip(), raw.lines.get(("config_schema",)), add)
    if validator is None:
        return
    in_template = [p for p in parsed if p[0].section and norm_heading(p[0].section) == "template"]
    for block, value, node in in_template or parsed:
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            add(
                "config-schema",
                _node_line(node, list(error.absolute_path), block.line),
                f"config does not match schema '{name}' at {where}: {error.message}",
                f"Fix the value to match schemas/configs/{name}.json.",
            )


def _parse_block(block: Any, indent: int, add: Any) -> tuple[Any, Any]:
    """Parse a config block; a syntax error (or a YAML/JSON bomb) is a finding at its line in the file."""
    lang = _CONFIG_LANGS[block.lang]
    where = block.line - 1
    if lang == "json":
        try:
            value = safeload.load_json(block.content)
        except InputLimitError as exc:
            add("config-parse", block.line, f"the json block is refused: {exc.message}", exc.hint)
            return None, None
        except InputError as exc:
            add(
                "config-parse",
                where + (exc.line or 1),
                f"the json block does not parse: {exc.message.replace('not valid JSON: ', '')}",
                "Fix the JSON syntax at that line.",
                column=exc.column + indent if exc.column else None,
            )
            return None, None
        try:
            node = safeload.compose_yaml(block.content, dates=False)
        except InputError:
            node = None
        return value, node
    try:
        nodes = [n for n in safeload.compose_yaml_all(block.content, line_offset=where, dates=False) if n is not None]
        values = [safeload.construct(n, dates=False) for n in nodes]
    except InputLimitError as exc:
        add("config-parse", exc.line, f"the yaml block is refused: {exc.message}", exc.hint)
        return None, None
    except InputError as exc:
        add(
            "config-parse",
            exc.line or block.line,
            f"the yaml block does not parse: {exc.message.replace('not valid YAML: ', '')}",
            "Fix the YAML syntax at that line (indentation, quoting).",
            column=exc.column + indent if exc.column else None,
        )
        return None, None
    except yaml.YAMLError as exc:
        add("config-parse", block.line, f"the yaml block does not parse: {exc}", "Fix the YAML syntax.")
        return None, None
    if len(values) == 1:
        return values[0], nodes[0]
    return (values[0], nodes[0]) if values else (None, None)


def _node_line(node: Any, path: list, default: int) -> int:
    """The file line of a value inside a parsed config block, by following its path in the YAML nodes."""
    if node is None:
        return default
    line = default + node.start_mark.line
    for part in path:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    nxt = v
                    line = default + k.start_mark.line
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = default + nxt.start_mark.line
        if nxt is None:
            break
        node = nxt
    return line


def _validator(ctx: Any, name: str, line: int | None, add: Any) -> Any:
    if name in ctx.validators:
        validator, problem = ctx.validators[name]
    else:
        validator, problem = None, None
        path = ctx.workspace.schemas_dir / "configs" / f"{name}.json"
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or not path.is_file():
            problem = (
                f"schema '{name}' not found (looked for {ctx.workspace.relative(path)})",
                "Add the JSON Schema file there, or fix config_schema.",
            )
        else:
            import jsonschema

            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                validator = cls(schema)
            except (OSError, ValueError) as exc:
                problem = (f"schema '{name}' cannot be read: {exc}", f"Fix {ctx.workspace.relative(path)}.")
            except jsonschema.SchemaError as exc:
                problem = (
                    f"schema '{name}' is not a valid JSON Schema: {exc.message}",
                    f"Fix {ctx.workspace.relative(path)}.",
                )
        ctx.validators[name] = (validator, problem)
    if problem:
        add("config-schema", line, *problem)
    return validator


def check_applies_to(ctx: Any, raw: atoms.RawAtom, data: dict, add: Any) -> None:
    """applies-to: each ``{schema, pointer}`` names a registered schema and a place that schema has."""
    items = data.get("applies_to")
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue  # wrong-type is reported by the field rules
        line = raw.lines.get(("applies_to", i), raw.lines.get(("applies_to",)))
        refs = [("", item)]
        if isinstance(item.get("refers_to"), dict):
            refs.append(("refers_to: ", item["refers_to"]))
        for label, ref in refs:
            name, pointer = ref.get("schema"), ref.get("pointer", "")
            if not isinstance(name, str) or not isinstance(pointer, str):
                continue
            schema = _schema_data(ctx, name.strip())
            if schema is None:
                add(
                    "applies-to",
                    line,
                    f"{label}schema '{name}' is not registered (no schemas/configs/{name}.json)",
                    "Register it with `kb schemas add FILE.json`, or fix the name.",
                )
                continue
            if pointer and not pointer.startswith("/"):
                add(
                    "applies-to",
                    line,
                    f"{label}pointer '{pointer}' is not a JSON Pointer (it starts with '/')",
                    "Write it like /spec/syncPolicy/automated/prune.",
                )
                continue
            missing = schema_missing(schema, pointer)
            if missing is not None:
                add(
                    "applies-to",
                    line,
                    f"{label}pointer '{pointer}' does not resolve in schema '{name}': no '{missing}' there",
                    "Fix the pointer to a place the schema defines.",
                )


def _schema_data(ctx: Any, name: str) -> dict | None:
    cache = ctx.validators.setdefault("__applies_to__", ({}, None))[0]
    if name not in cache:
        path = ctx.workspace.schemas_dir / "configs" / f"{name}.json"
        data = None
        if re.fullmatch(r"[A-Za-z0-9._-]+", name) and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
        cache[name] = data if isinstance(data, dict) else None
    return cache[name]


def schema_missing(schema: dict, pointer: str) -> str | None:
    """None when ``pointer`` names a place ``schema`` defines; else the first part it lacks.

    Follows properties, additionalProperties, patternProperties, items, local $ref and
    allOf/anyOf/oneOf; an object schema that declares no properties at all is free-form
    (e.g. Kubernetes ``metadata`` in a CRD), so anything below it resolves."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    nodes = [schema]
    for part in parts:
        nxt: list = []
        open_ended = False
        for node in _expand(schema, nodes):
            if node.get("x-kubernetes-preserve-unknown-fields") is True or node is True:
                open_ended = True
            props = node.get("properties")
            if isinstance(props, dict) and part in props:
                nxt.append(props[part])
            for pattern, sub in (node.get("patternProperties") or {}).items():
                if re.search(pattern, part):
                    nxt.append(sub)
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                nxt.append(extra)
            items = node.get("items")
            if isinstance(items, dict) and (part.isdigit() or part == "-"):
                nxt.append(items)
            if (
                node.get("type") == "object"
                and "properties" not in node
                and extra is None
                and "patternProperties" not in node
            ):
                open_ended = True
        if not nxt:
            return None if open_ended else part
        nodes = nxt
    return None


def _expand(root: dict, nodes: list) -> list[dict]:
    out: list[dict] = []
    todo = list(nodes)
    seen = 0
    while todo and seen < 200:
        node = todo.pop()
        seen += 1
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            target: Any = root
            for p in [x for x in ref[1:].split("/") if x]:
                target = target.get(p) if isinstance(target, dict) else None
            if isinstance(target, dict):
                todo.append(target)
        for key in ("allOf", "anyOf", "oneOf"):
            todo += [n for n in node.get(key) or [] if isinstance(n, dict)]
        out.append(node)
    return out
