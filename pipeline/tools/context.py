"""Build a ToolContext outside the server: the workspace, its newest bundle (or a given one),
the calibrated uncertainty threshold and the configured LLM, as ``kb tools``, ``kb mcp``, ``kb ops
ask`` and ``kb agent`` need them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.tools.registry import ToolContext


def open_context(
    settings: Settings, workspace: Any | None, bundle_path: Path | None, *, llm: bool = True
) -> ToolContext:
    """A ToolContext with the bundle at ``bundle_path`` loaded (None: no index; tools that need one say so)."""
    index = None
    extras: dict[str, Any] = {}
    if bundle_path is not None:
        from pipeline.answer.bundle import open_bundle
        from pipeline.answer.calibrate import calibrate

        index = open_bundle(bundle_path, settings)
        extras["threshold"] = calibrate(index, settings).threshold
    if llm:
        from pipeline.answer import llm_configured

        if llm_configured(settings):
            from pipeline.backends.llm import make_client

            extras["llm"] = make_client(settings)
    return ToolContext(settings=settings, workspace=workspace, index=index, extras=extras)
