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

from pipeline import atoms
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
    """Parse a config block; a syntax error is a finding at its line and column in the file."""
    lang = _CONFIG_LANGS[block.lang]
    if lang == "json":
        try:
            value = json.loads(block.content)
        except json.JSONDecodeError as exc:
            add(
                "config-parse",
                block.line + exc.lineno - 1,
                f"the json block does not parse: {exc.msg}",
                "Fix the JSON syntax at that line.",
                column=exc.colno + indent,
            )
            return None, None
        try:
            node = yaml.compose(block.content, Loader=atoms.YamlLoader)
        except yaml.YAMLError:
            node = None
        return value, node
    nodes: list[Any] = []
    values: list[Any] = []
    loader = atoms.YamlLoader(block.content)
    try:
        while loader.check_node():
            node = loader.get_node()
            nodes.append(node)
            values.append(loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = block.line + mark.line if mark else block.line
        add(
            "config-parse",
            line,
            f"the yaml block does not parse: {exc.problem or exc.context}",
            "Fix the YAML syntax at that line (indentation, quoting).",
            column=mark.column + 1 + indent if mark else None,
        )
        return None, None
    except yaml.YAMLError as exc:
        add("config-parse", block.line, f"the yaml block does not parse: {exc}", "Fix the YAML syntax.")
        return None, None
    finally:
        loader.dispose()
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
