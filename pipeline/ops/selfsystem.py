"""kb as a system of its own: every workspace can ask why its last export or serve failed.

The built-in ``kb`` system (used when there is no ``systems/kb.yaml``) reads kb's own traces:
the logs under ``.kb/logs/`` (send ``kb serve``'s log there: ``kb serve 2>> .kb/logs/serve.log``), the run log
``.kb/runs.duckdb`` (named queries over distillation runs and requests), the last check report
``.kb/state/check-report.json`` (as a config file to read), and ``/metrics`` of a local
``kb serve`` through a Prometheus that scrapes it (``KB_OPS_KB_PROMETHEUS``, default
``http://127.0.0.1:9090``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.ops.manifest import (
    ConfigSource,
    LogSource,
    MetricsSource,
    RecordQuery,
    RecordsSource,
    SystemManifest,
)

_QUERIES = {
    "last_runs": RecordQuery(
        sql="SELECT run_id, started, finished, status, backend, model, atoms_written, requests, cost_usd "
        "FROM runs ORDER BY started DESC LIMIT :limit",
        params=["limit"],
    ),
    "failed_requests": RecordQuery(
        sql="SELECT run_id, requested_at, interview, window_index, status, retries FROM requests "
        "WHERE status <> 'ok' ORDER BY requested_at DESC LIMIT :limit",
        params=["limit"],
    ),
}


def kb_manifest(workspace_root: Path) -> SystemManifest:
    root = Path(workspace_root)
    runs = root / ".kb" / "runs.duckdb"
    return SystemManifest(
        name="kb",
        description="kb itself: its logs, run log, last check report and /metrics",
        logs=[LogSource(name="kb", paths=[".kb/logs/*.log", ".kb/logs/**/*.log"], format="auto")],
        records=RecordsSource(url=f"duckdb:///{runs}", queries=_QUERIES) if runs.is_file() else None,
        metrics=MetricsSource(
            base_url=os.environ.get("KB_OPS_KB_PROMETHEUS", "http://127.0.0.1:9090"),
            queries={
                "request_rate": "sum by (route, status) (rate(kb_requests_total[5m]))",
                "uncertain_answers": 'sum(rate(kb_answers_total{uncertain="true"}[1h]))',
            },
        ),
        configs=[ConfigSource(name="state", path=".kb/state")],
    )


def check_findings(workspace_root: Path) -> list[dict[str, Any]]:
    """The last ``kb check`` report's errors and warnings as log-like records (empty without one)."""
    path = Path(workspace_root) / ".kb" / "state" / "check-report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [f for f in data.get("findings", []) if f.get("severity") in ("error", "warning")]
