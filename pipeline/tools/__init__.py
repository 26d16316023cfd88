"""One registry of typed tools for chat, MCP and the CLI (see ``registry``)."""

from pipeline.tools.registry import Effect, Tool, ToolContext, ToolError, all_tools, call, get, openai_tools, tool

__all__ = ["Effect", "Tool", "ToolContext", "ToolError", "all_tools", "call", "get", "openai_tools", "tool"]
