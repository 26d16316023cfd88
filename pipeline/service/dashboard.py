"""The Grafana dashboard, generated from the metric families the service defines.

Panels are written for the families that exist in the catalogue (the service's ``Metrics``
registry, plus the workers' when the workers extra is installed), and every query is checked
against it, so a renamed metric fails the build here instead of drawing an empty panel in
production. ``kb monitoring dashboard`` prints it; ``deploy/grafana/kb-dashboard.json`` is the
committed copy (a test keeps it equal to the generated one).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_NAME = re.compile(r"\b(kb_[a-z0-9_]+)")


@dataclass(frozen=True)
class Family:
    name: str  # as exposed: counters end in _total, histograms expose _bucket/_sum/_count
    kind: str  # counter | gauge | histogram | summary | info
    help: str


def catalogue() -> dict[str, Family]:
    """Every metric family ``kb serve`` (and ``kb worker`` when installed) defines, by exposed name."""
    from pipeline.service.metrics import Metrics

    families: dict[str, Family] = {}
    registries = [Metrics().registry]
    try:  # the workers define their own metrics; present only with kb-atoms[workers]
        workers = importlib.import_module("pipeline.jobs.metrics")
        registries.append(workers.catalogue_registry())
    except (ImportError, AttributeError):
        pass
    for registry in registries:
        for metric in registry.collect():
            name = metric.name + "_total" if metric.type == "counter" else metric.name
            families[name] = Family(name, metric.type, metric.documentation)
    return families


def exposed_names(family: Family) -> set[str]:
    """The sample names a family shows on /metrics."""
    if family.kind == "histogram":
        return {family.name + s for s in ("_bucket", "_sum", "_count")}
    return {family.name}


def metric_names(expr: str) -> set[str]:
    """The kb_* metric names a PromQL expression reads."""
    return set(_NAME.findall(expr))


def _panel(title: str, exprs: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries") -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _latency(route_filter: str = "") -> list[tuple[str, str]]:
    sel = f"{{{route_filter}}}" if route_filter else ""
    return [
        (
            f"histogram_quantile({q}, sum by (le, route) (rate(kb_request_latency_seconds_bucket{sel}[5m])))",
            f"p{p} {{{{route}}}}",
        )
        for q, p in ((0.5, 50), (0.95, 95), (0.99, 99))
    ]


#: (row, title, queries, unit, panel kind); a panel is kept when every metric it reads exists.
PANELS: list[tuple[str, str, list[tuple[str, str]], str, str]] = [
    (
        "Traffic",
        "Requests by route",
        [("sum by (route) (rate(kb_requests_total[5m]))", "{{route}}")],
        "reqps",
        "timeseries",
    ),
    (
        "Traffic",
        "Error ratio (5xx) by route",
        [
            (
                'sum by (route) (rate(kb_requests_total{status=~"5.."}[5m])) / sum by (route) (rate(kb_requests_total[5m]))',
                "{{route}}",
            )
        ],
        "percentunit",
        "timeseries",
    ),
    (
        "Traffic",
        "Client errors (4xx) by status",
        [('sum by (status) (rate(kb_requests_total{status=~"4.."}[5m]))', "{{status}}")],
        "reqps",
        "timeseries",
    ),
    ("Latency", "Latency p50 / p95 / p99 by route", _latency(), "s", "timeseries"),
    (
        "Answers",
        "Uncertain ratio",
        [('sum(rate(kb_answers_total{uncertain="true"}[15m])) / sum(rate(kb_answers_total[15m]))', "uncertain")],
        "percentunit",
        "timeseries",
    ),
    ("Answers", "Answers by mode", [("sum by (mode) (rate(kb_answers_total[5m]))", "{{mode}}")], "short", "timeseries"),
    (
        "Answers",
        "Retrieval evidence (median best-passage similarity)",
        [("histogram_quantile(0.5, sum by (le) (rate(kb_retrieval_top_similarity_bucket[15m])))", "median")],
        "short",
        "timeseries",
    ),
    (
        "LLM",
        "LLM tokens per second",
        [("sum by (direction) (rate(kb_llm_tokens_total[5m]))", "{{direction}}")],
        "short",
        "timeseries",
    ),
    ("LLM", "LLM cost per hour", [("sum(rate(kb_llm_cost_usd_total[1h])) * 3600", "USD/h")], "currencyUSD", "stat"),
    (
        "Bundle",
        "Bundle served",
        [("max by (path, checksum, model) (kb_bundle_info)", "{{checksum}} {{model}}")],
        "short",
        "table",
    ),
    (
        "Bundle",
        "Bundle reloads by result",
        [("sum by (result) (increase(kb_bundle_reloads_total[1h]))", "{{result}}")],
        "short",
        "timeseries",
    ),
    (
        "MCP",
        "MCP tool calls by tool",
        [("sum by (tool) (rate(kb_mcp_tool_calls_total[5m]))", "{{tool}}")],
        "short",
        "timeseries",
    ),
    (
        "MCP",
        "MCP tool errors by tool",
        [('sum by (tool) (rate(kb_mcp_tool_calls_total{outcome="error"}[5m]))', "{{tool}}")],
        "short",
        "timeseries",
    ),
    (
        "Workers",
        "Jobs by stage and outcome",
        [("sum by (stage, outcome) (rate(kb_jobs_total[5m]))", "{{stage}} {{outcome}}")],
        "short",
        "timeseries",
    ),
    ("Workers", "Queue depth", [("max by (queue) (kb_jobs_queue_depth)", "{{queue}}")], "short", "timeseries"),
]


def build(families: dict[str, Family] | None = None) -> dict[str, Any]:
    """The dashboard as Grafana JSON (schema 39), one row per group of panels that exist."""
    families = catalogue() if families is None else families
    known = set().union(*(exposed_names(f) for f in families.values())) if families else set()
    panels: list[dict[str, Any]] = []
    y = 0
    row_seen: set[str] = set()
    width, height = 12, 8
    col = 0
    for row, title, exprs, unit, kind in PANELS:
        used = set().union(*(metric_names(e) for e, _ in exprs))
        if not used <= known:
            continue  # e.g. MCP or worker panels on an install without them
        if row not in row_seen:
            if col:
                y += height
                col = 0
            row_seen.add(row)
            panels.append(
                {
                    "type": "row",
                    "title": row,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
        panel = _panel(title, exprs, unit, kind)
        panel["gridPos"] = {"h": height, "w": width, "x": col * width, "y": y}
        col += 1
        if col == 2:
            col = 0
            y += height
        panels.append(panel)
    for i, panel in enumerate(panels, start=1):
        panel["id"] = i
    return {
        "title": "kb",
        "uid": "kb-overview",
        "description": "kb serve and kb worker: traffic, errors, latency, answers, LLM use, bundle, MCP, workers.",
        "tags": ["kb"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                    "current": {},
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render(families: dict[str, Family] | None = None) -> str:
    return json.dumps(build(families), indent=2, sort_keys=False) + "\n"
