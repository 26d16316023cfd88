"""kb as a system of its own: every workspace can ask why its last export or serve failed.

The built-in ``kb`` system (used when there is no ``systems/kb.yaml``) reads kb's own traces:
the logs under ``.kb/logs/`` (``kb serve`` appends its own there: ``serve.log_file``, default ``.kb/logs/serve.log``), the run log
``.kb/runs.duckdb`` (named queries over distillation runs and requests), the last check report
``.kb/state/check-report.json`` (as a config file to read), and ``/metrics`` of a local
``kb serve`` through a Prometheus that scrapes it (``KB_OPS_KB_PROMETHEUS``, default
``http://127.0.0.1:9090``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def check_findings(workspace_root: Path) -> list[dict[str, Any]]:
    """The last ``kb check`` report's errors and warnings as log-like records (empty without one)."""
    path = Path(workspace_root) / ".kb" / "state" / "check-report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [f for f in data.get("findings", []) if f.get("severity") in ("error", "warning")]
