"""Writing an atom file conservatively: unchanged keys keep their original text (order, quoting,
comments), so git diffs show exactly what changed; unchanged files stay byte-identical."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.atoms.front import load_yaml, split
from pipeline.errors import InputError
from pipeline.models import AtomMeta
from pipeline.workspace import atomic_write_text


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # never write &id001 anchors
        return True


def _repr_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(x, (str, int, float, bool)) or x is None for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _repr_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(list, _repr_list)
_Dumper.add_representer(str, _repr_str)
_Dumper.add_representer(dt.date, lambda d, v: d.represent_scalar("tag:yaml.org,2002:timestamp", v.isoformat()))


def meta_to_data(meta: AtomMeta) -> dict[str, Any]:
    """Front matter as plain data, in field order, leaving out empty optional values."""
    data = meta.model_dump(mode="python", exclude_none=True)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("config_schema", "needs", "applies_to") and not value:
            continue
        if key == "applies_to":
            value = [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in meta.applies_to]
        if key == "generator" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in (None,)}
        out[key] = value
    return out


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False)


def _key_blocks(fm_text: str) -> tuple[list[str], dict[str, str], str]:
    """Split YAML text into top-level key blocks (comments attach to the key below them)."""
    order: list[str] = []
    blocks: dict[str, str] = {}
    pending = ""
    current: str | None = None
    for line in fm_text.splitlines(keepends=True):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
        if m:
            current = m.group(1)
            order.append(current)
            blocks[current] = pending + line
            pending = ""
        elif current is None or line.startswith("#") or not line.strip():
            pending += line
        else:
            blocks[current] += line
    return order, blocks, pending


def render(meta: AtomMeta, body: str, original: str | None = None) -> str:
    """The file text for an atom. With ``original``, unchanged keys keep their original text."""
    data = meta_to_data(meta)
    if original is not None:
        raw = split(original)
        if raw.front_matter is not None:
            try:
                load_yaml(raw)
            except InputError:
                raw.data = None
            if isinstance(raw.data, dict):
                old = AtomMeta.model_validate(raw.data) if _valid(raw.data) else None
                if old is not None and meta_to_data(old) == data and raw.body == body:
                    return original
                order, blocks, trailer = _key_blocks(raw.front_matter)
                old_data = meta_to_data(old) if old is not None else {}
                parts: list[str] = []
                for key, value in data.items():
                    if key not in blocks and key not in meta.model_fields_set:
                        continue  # a default the file never spelled out: keep it out of the diff
                    if key in blocks and key in old_data and old_data[key] == value:
                        parts.append(blocks[key])
                    else:
                        parts.append(dump_yaml({key: value}))
                return "---\n" + "".join(parts) + trailer + "---\n" + body
    return "---\n" + dump_yaml(data) + "---\n" + body


def _valid(data: dict) -> bool:
    try:
        AtomMeta.model_validate(data)
        return True
    except ValidationError:
        return False


def write(path: Path, meta: AtomMeta, body: str) -> str:
    """Atomically write an atom, keeping the original text of unchanged keys. Returns the text."""
    path = Path(path)
    original = path.read_text(encoding="utf-8") if path.is_file() else None
    text = render(meta, body, original)
    if text != original:
        atomic_write_text(path, text)
    return text
