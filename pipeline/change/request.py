"""From what a person (or a tool call) asks to a plan: explicit flags, a recipe file, or an
instruction the LLM turns into a recipe (only when no explicit edit is given)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.change import engine
from pipeline.change import recipe as recipes
from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.workspace import Workspace


def plan(
    settings: Settings,
    workspace: Workspace,
    *,
    base: Path,
    instruction: str | None = None,
    files: list[str] | None = None,
    where: list[str] | None = None,
    set_: list[str] | None = None,
    delete: list[str] | None = None,
    append: list[str] | None = None,
    recipe_file: Path | None = None,
    schema: str | None = None,
    progress: Any = None,
) -> engine.Plan:
    files = list(files or [])
    llm = None
    recipe: Any
    if recipe_file is not None:
        recipe = recipes.load(recipe_file)
        extra = recipes.from_flags(
            files=[],
            where=list(where or []),
            set_=list(set_ or []),
            delete=list(delete or []),
            append=list(append or []),
        )
        update: dict[str, Any] = {"files": files or recipe.files}
        if where:
            update["where"] = recipe.where + [recipes.parse_where(w) for w in where]
        if extra is not None:
            update["ops"] = recipe.ops + extra.ops
        recipe = recipe.model_copy(update=update)
    else:
        recipe = recipes.from_flags(
            files=files,
            where=list(where or []),
            set_=list(set_ or []),
            delete=list(delete or []),
            append=list(append or []),
            description=instruction or "",
        )
    if recipe is None:
        if not instruction:
            raise InputError(
                "nothing to change: no edit and no instruction",
                "Give edits (--set PATH=VALUE, --delete PATH, --append PATH=VALUE), a --recipe FILE, "
                "or an instruction in quotes.",
            )
        from pipeline.backends.llm import configured

        if not configured(settings):
            raise InputError(
                "an instruction needs an LLM to write the recipe, and none is configured",
                "Give the edits explicitly (--where/--set/--delete/--append or --recipe FILE), "
                "or set llm.base_url in kb.yaml.",
            )
        matched = engine.expand(files, base)
        from pipeline.change.llm_recipe import write_recipe

        recipe, llm = write_recipe(settings, instruction, files, matched[0] if matched else None, schema)
        if where:
            recipe = recipe.model_copy(update={"where": recipe.where + [recipes.parse_where(w) for w in where]})
    if not recipe.files:
        raise InputError("no files to change", "Name them with --files GLOB (relative to this folder).")
    return engine.make_plan(workspace, recipe, base=base, schema=schema, llm=llm, progress=progress)
