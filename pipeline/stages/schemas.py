"""Generate JSON Schemas from the pydantic models into ``schemas/`` (committed; a test keeps them fresh)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.models import SCHEMA_MODELS
from pipeline.workspace import atomic_write_text


def render_all() -> dict[str, str]:
    """File name -> JSON text, for every model in ``SCHEMA_MODELS``."""
    out: dict[str, str] = {}
    for stem, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"kb/{stem}.json", **schema}
        out[f"{stem}.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return out


def run(folder: Path) -> list[Path]:
    """Write the schemas into ``folder``; returns the files that changed."""
    changed: list[Path] = []
    for name, text in render_all().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)
            changed.append(path)
    return changed
