"""Change plans: one recipe (selection + edits) applied to many near-identical config files.

``recipe`` (what to change), ``paths`` (dot paths and JSON Pointers), ``docs`` (round-trip YAML and
JSON), ``schemas`` (the target system's schemas registered in the workspace), ``engine`` (plan:
edit in memory, validate, write ``plans/<id>/``), ``apply`` (all-or-none with a journal, rollback),
``llm_recipe`` (the LLM writes the recipe from an instruction). Only ``apply`` writes a user's
files, and only the CLI calls it.
"""
