"""Tools ``setup_new`` and ``change_plan``: they write only a proposal (``proposals/``) or a plan
(``plans/``). Applying either is a CLI command a person runs (``kb setup apply``,
``kb change apply``), never a tool."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pipeline.tools.registry import ToolContext, tool


class SetupNewIn(BaseModel):
    situation: str = Field(min_length=3, description="The situation to set up, in the user's words.")
    answers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Known values: file name -> {JSON Pointer: value}."
    )
    offline: bool = Field(False, description="Fill templates from defaults and answers only (no LLM).")


class SetupNewOut(BaseModel):
    id: str
    folder: str
    files: list[str]
    assumptions: int = Field(description="Values no atom supports: the person should tune them.")
    mode: str
    explain: str = Field(description="EXPLAIN.md: each value with its atom and quote, or 'assumption'.")
    apply_with: str


@tool("setup_new", input=SetupNewIn, output=SetupNewOut, effect="proposal", group="setup", title="Propose setup files")
def setup_new(ctx: ToolContext, args: SetupNewIn) -> SetupNewOut:
    """Propose a validated set of config files for a situation, each value cited or marked as an assumption.

    Writes proposals/setup-<id>/ only; a person applies it with `kb setup apply ID --to DIR`."""
    from pipeline.setup import output

    ws = ctx.need_workspace()
    p = output.new(ctx.settings, ws, args.situation, args.answers, use_llm=False if args.offline else None)
    explain = (p.folder / "EXPLAIN.md").read_text(encoding="utf-8")
    return SetupNewOut(
        id=p.id,
        folder=ws.relative(p.folder),
        files=p.files,
        assumptions=p.assumptions,
        mode=p.mode,
        explain=explain[:8000],
        apply_with=f"kb setup apply {p.id} --to DIR",
    )


class ChangePlanIn(BaseModel):
    instruction: str | None = Field(None, description="The change in words (the LLM writes the recipe).")
    files: list[str] = Field(min_length=1, description="Globs of the files, relative to the workspace.")
    where: list[str] = Field(default_factory=list, description="PATH=VALUE, PATH^=PREFIX or PATH (exists); ANDed.")
    set: list[str] = Field(default_factory=list, description="PATH=VALUE edits (VALUE is YAML).")
    delete: list[str] = Field(default_factory=list, description="PATHs to remove.")
    append: list[str] = Field(default_factory=list, description="PATH=VALUE: append to the list unless present.")
    schema_name: str | None = Field(None, description="Registered schema name (default: the one registered).")


class ChangePlanOut(BaseModel):
    id: str
    folder: str
    valid: bool
    summary: dict[str, int]
    summary_line: str
    changed: list[str]
    skipped: dict[str, str]
    invalid: dict[str, list[str]]
    apply_with: str | None


@tool(
    "change_plan",
    input=ChangePlanIn,
    output=ChangePlanOut,
    effect="proposal",
    group="change",
    title="Plan a bulk change",
)
def change_plan(ctx: ToolContext, args: ChangePlanIn) -> ChangePlanOut:
    """Plan one change over many config files: per-file status, a diff and a summary, validated against the schema.

    Writes plans/<id>/ only; a person applies it with `kb change apply ID`."""
    from pipeline.change import request

    ws = ctx.need_workspace()
    plan = request.plan(
        ctx.settings,
        ws,
        base=ws.root,
        instruction=args.instruction,
        files=args.files,
        where=args.where,
        set_=args.set,
        delete=args.delete,
        append=args.append,
        schema=args.schema_name,
    )
    return ChangePlanOut(
        id=plan.id,
        folder=ws.relative(plan.folder),
        valid=plan.valid,
        summary=plan.summary,
        summary_line=plan.summary_line(),
        changed=[f.display for f in plan.files if f.status == "changed"][:200],
        skipped={f.display: f.reason or "" for f in plan.files if f.status == "skipped"},
        invalid={f.display: f.errors for f in plan.files if f.status == "invalid"},
        apply_with=f"kb change apply {plan.id}" if plan.valid and plan.changes else None,
    )
