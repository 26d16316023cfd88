"""What one ``kb check`` run shares across files, and the per-file facts the cross-file rules need."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace


@dataclass
class AtomInfo:
    path: Path
    rel: str
    checked: bool
    id: str | None = None
    id_line: int | None = None
    title: str | None = None
    title_line: int | None = None
    summary: str = ""
    related: list[tuple[str, int]] = field(default_factory=list)


class CheckContext:
    """What one run shares across files: settings, workspace, caches of schemas and transcripts."""

    def __init__(self, settings: Settings, workspace: Workspace, reporter: Reporter):
        self.settings = settings
        self.cs = settings.check
        self.workspace = workspace
        self.reporter = reporter
        self.validators: dict[str, Any] = {}
        self.transcripts: dict[str, Any] = {}
