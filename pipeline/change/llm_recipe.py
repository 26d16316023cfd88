"""The LLM writes the recipe from an instruction: one structured request, whatever the number
of files (the engine then applies it deterministically). The model sees the instruction, one
matching file and the schema's name; its recipe is validated like a hand-written one, and an
invalid one is re-asked with the reason (instructor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.change.recipe import Recipe
from pipeline.config import Settings

SYSTEM = (
    "You turn an administrator's instruction into a change recipe applied to many near-identical config "
    "files. Select the documents with `where` predicates (equals / prefix / exists on dot paths like "
    "metadata.labels.team or JSON Pointers) and give the edits as ops: set (create or replace a value), "
    "append (add to a list unless present), remove, add (JSON Patch add), test (a precondition). "
    "Use only paths that exist in the sample file or that the instruction names. Do not restate the files glob."
)


def write_recipe(
    settings: Settings, instruction: str, files: list[str], sample: Path | None, schema: str | None
) -> tuple[Recipe, dict[str, Any]]:
    """(recipe, llm record for plan.json: model, requests, tokens, cost)."""
    from pipeline.backends.llm import make_client

    text = ""
    if sample is not None:
        text = sample.read_text(encoding="utf-8", errors="replace")[: settings.change.sample_chars]
    user = f"Instruction: {instruction}\n"
    if schema:
        user += f"The files validate against the schema '{schema}'.\n"
    if text:
        user += f"\nOne of the files ({sample.name if sample else ''}):\n```\n{text}\n```\n"
    client = make_client(settings)
    try:
        recipe, usage = client.extract(
            Recipe, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        )
    finally:
        client.close()
    recipe = recipe.model_copy(update={"files": files, "description": recipe.description or instruction})
    return recipe, {
        "model": client.model,
        "requests": usage.requests,
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
        "cost_usd": round(usage.cost_usd, 6),
        "instruction": instruction,
    }
