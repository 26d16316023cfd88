"""The one registry of typed tools that the CLI, the OpenAI tools schema, MCP and the agent loops share.

A tool is a function from a pydantic input model to a pydantic output model, plus what it may do
to the world: ``read`` (reads the knowledge base or the system, writes nothing) or ``proposal``
(writes only a proposal or a plan under kb's own folders, ``proposals/`` and ``plans/``). There is
no third kind on purpose: applying a proposal or a plan to a user's files is a CLI command a
person runs, never a tool, so no agent loop can reach it.

Tool modules register themselves with the :func:`tool` decorator; :data:`BUILTIN_MODULES` lists
them and is imported on first use, so the registry costs nothing until a tool is needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from pipeline.config import Settings
from pipeline.errors import KbError

Effect = Literal["read", "proposal"]

#: Modules that define built-in tools; each registers with ``@tool`` at import.
BUILTIN_MODULES: tuple[str, ...] = (
    "pipeline.tools.knowledge",
    "pipeline.tools.ops",
    "pipeline.tools.setup_change",  # setup_new, change_plan (write only under proposals/ and plans/)
)


class ToolError(KbError):
    """A tool refused its arguments or could not run; the message is shown to the caller (or the model)."""


@dataclass
class ToolContext:
    """What a tool may use: settings, and lazily the workspace, the loaded index and the systems.

    Transports fill in what they have: the service passes its loaded index, the CLI its workspace.
    ``extras`` carries transport-specific objects (a system adapter set, a reporter) by name.
    """

    settings: Settings
    workspace: Any | None = None  # pipeline.workspace.Workspace
    index: Any | None = None  # a loaded index (pipeline.index.bundle.Bundle or the Postgres twin)
    extras: dict[str, Any] = field(default_factory=dict)

    def need_index(self) -> Any:
        if self.index is None:
            raise ToolError(
                "this tool needs a knowledge-base index and none is loaded",
                hint="run `kb export` first, or start the server with a bundle (`kb serve`)",
            )
        return self.index

    def need_workspace(self) -> Any:
        if self.workspace is None:
            raise ToolError("this tool needs a workspace", hint="run it inside a kb workspace or pass --workspace DIR")
        return self.workspace


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    func: Callable[[ToolContext, Any], BaseModel]
    effect: Effect = "read"
    group: str = "knowledge"  # knowledge | ops | setup | change: which specialist loops see it

    @property
    def read_only(self) -> bool:
        return self.effect == "read"

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def run(self, ctx: ToolContext, arguments: dict[str, Any] | BaseModel | None = None) -> BaseModel:
        """Validate the arguments, run, and check the result has the declared output type."""
        if isinstance(arguments, self.input_model):
            args = arguments
        else:
            try:
                args = self.input_model.model_validate(arguments or {})
            except ValidationError as exc:
                raise ToolError(f"{self.name}: invalid arguments: {_brief(exc)}", hint=_fields_hint(self)) from None
        result = self.func(ctx, args)
        if not isinstance(result, self.output_model):
            raise TypeError(f"tool {self.name} returned {type(result).__name__}, not {self.output_model.__name__}")
        return result


_REGISTRY: dict[str, Tool] = {}
_loaded = False


def tool(
    name: str,
    *,
    input: type[BaseModel],
    output: type[BaseModel],
    effect: Effect = "read",
    group: str = "knowledge",
    title: str | None = None,
) -> Callable[[Callable[[ToolContext, Any], BaseModel]], Callable[[ToolContext, Any], BaseModel]]:
    """Register ``func(ctx, args) -> output`` as a tool; its docstring's first paragraph is the description."""

    def register(func: Callable[[ToolContext, Any], BaseModel]) -> Callable[[ToolContext, Any], BaseModel]:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"tool {name!r} is registered twice")
        doc = (func.__doc__ or "").strip().split("\n\n", 1)[0]
        _REGISTRY[name] = Tool(
            name=name,
            title=title or name.replace("_", " ").capitalize(),
            description=" ".join(doc.split()),
            input_model=input,
            output_model=output,
            func=func,
            effect=effect,
            group=group,
        )
        return func

    return register


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def all_tools(group: str | None = None) -> list[Tool]:
    _load()
    return [t for t in _REGISTRY.values() if group is None or t.group == group]


def get(name: str) -> Tool:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        from rapidfuzz import process

        close = [m[0] for m in process.extract(name, list(_REGISTRY), limit=3, score_cutoff=60)]
        raise ToolError(
            f"unknown tool {name!r}", hint=f"did you mean {', '.join(close)}?" if close else "list them with `kb tools`"
        ) from None


def call(name: str, ctx: ToolContext, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a tool by name with JSON arguments; returns its output as JSON-ready data."""
    return get(name).run(ctx, arguments).model_dump(mode="json")


def openai_tools(tools: list[Tool] | None = None) -> list[dict[str, Any]]:
    """The tools as an OpenAI ``tools=[...]`` list (function calling)."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema()}}
        for t in (tools if tools is not None else all_tools())
    ]


def _brief(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ())) or "(arguments)"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts)


def _fields_hint(t: Tool) -> str:
    props = t.input_schema().get("properties", {})
    return f"{t.name} takes: {', '.join(props) or 'no arguments'}"
