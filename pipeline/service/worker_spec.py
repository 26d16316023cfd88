"""What ``kb serve --workers N`` hands each worker process: one JSON spec in the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

WORKER_ENV = "KBSERVE_WORKER_SPEC"  # not KB_*: pydantic-settings would read it as serve.worker


def worker_serve_settings() -> Any:
    """The serve settings of a worker (from ``KBSERVE_WORKER_SPEC``; defaults without one)."""
    from pipeline.config import ServeSettings, Settings

    raw = os.environ.get(WORKER_ENV)
    if not raw:
        return ServeSettings()
    spec = json.loads(raw)
    root = spec.get("workspace")
    return Settings.load(Path(root) if root else None, **spec.get("flags", {})).serve
