"""Initial setup: from a described situation to a validated set of config files, each value
pointing at an atom and the expert's words or marked as an assumption to tune.

``knowledge`` (the config-template / interface-input / procedure atoms, retrieved for the
situation), ``propose`` (the typed proposal: one LLM call with re-asks on validator messages, or
offline from template defaults and answers; rendering and validation), ``output``
(``proposals/setup-<id>/``: files, plan.json, EXPLAIN.md; and applying through the change engine).
Setup sits one layer above ``pipeline.change``: it uses its round-trip documents, schemas and
journaled apply, never the other way round.
"""
