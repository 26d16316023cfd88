"""The tool registry: typed inputs validated, outputs typed, OpenAI schema, no 'apply' effect."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from pipeline.config import Settings
from pipeline.tools import registry


class EchoIn(BaseModel):
    text: str
    times: int = 1


class EchoOut(BaseModel):
    echoed: str


@registry.tool("test_echo", input=EchoIn, output=EchoOut, group="test")
def _echo(ctx: registry.ToolContext, args: EchoIn) -> EchoOut:
    """Repeat the text.

    Longer explanation that is not part of the description."""
    return EchoOut(echoed=args.text * args.times)


def test_call_validates_and_types():
    ctx = registry.ToolContext(settings=Settings())
    assert registry.call("test_echo", ctx, {"text": "ab", "times": 2}) == {"echoed": "abab"}
    with pytest.raises(registry.ToolError, match="times") as info:
        registry.call("test_echo", ctx, {"text": "ab", "times": "many"})
    assert "test_echo takes: text, times" in info.value.hint


def test_unknown_tool_names_close_matches():
    with pytest.raises(registry.ToolError, match="unknown tool") as info:
        registry.get("test_ech")
    assert "test_echo" in info.value.hint


def test_openai_schema_and_effects():
    t = registry.get("test_echo")
    assert t.description == "Repeat the text."
    [spec] = registry.openai_tools([t])
    assert spec["function"]["name"] == "test_echo"
    assert spec["function"]["parameters"]["required"] == ["text"]
    assert all(x.effect in ("read", "proposal") for x in registry.all_tools())


def test_context_needs_say_the_fix():
    ctx = registry.ToolContext(settings=Settings())
    with pytest.raises(registry.ToolError) as info:
        ctx.need_index()
    assert "kb export" in info.value.hint
