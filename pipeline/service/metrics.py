"""Prometheus metrics of one app (its own registry, so several apps in one process don't clash).

Several serving processes (``kb serve --workers N``): kb sets ``PROMETHEUS_MULTIPROC_DIR`` to a
folder of its own before the workers start, each worker writes its values there (prometheus-client
multiprocess mode) and ``/metrics`` on any worker reads all of them: counters and histograms are
summed, ``kb_bundle_info`` is the max over live workers (1 while any worker serves that bundle),
and ``kb_uncertain_ratio`` is computed from the summed answer counters, not merged per worker.
"""

from __future__ import annotations

import os
import time
from typing import Any


def multiprocess_dir() -> str | None:
    """The multiprocess folder when several serving processes share metrics, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kb_requests_total", "HTTP requests by route, method and status.", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "kb_request_latency_seconds",
            "Request latency by route (until the response starts).",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.retrieval_score = Histogram(
            "kb_retrieval_top_similarity",
            "Cosine similarity of the question and its best passage (the uncertainty evidence).",
            buckets=(0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.search_score = Histogram(
            "kb_search_top_score",
            "Fused score of the first search hit.",
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=r,
        )
        self.answers = Counter(
            "kb_answers_total", "Answers given, by mode and uncertainty.", ["mode", "uncertain"], registry=r
        )
        self.multiprocess = multiprocess_dir() is not None
        # one process: a gauge; several: computed at render time from the summed answers (a ratio does not merge)
        self.uncertain_rate = (
            None
            if self.multiprocess
            else Gauge("kb_uncertain_ratio", "Share of answers flagged uncertain since start.", registry=r)
        )
        self.reloads = Counter("kb_bundle_reloads_total", "Bundle reload attempts by result.", ["result"], registry=r)
        self.bundle_info = Gauge(
            "kb_bundle_info",
            "The bundle being served (value 1).",
            ["path", "checksum", "model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._bundle_labels: tuple[str, str, str] | None = None
        self.llm_tokens = Counter("kb_llm_tokens_total", "LLM tokens used for answers.", ["direction"], registry=r)
        self.tool_calls = Counter(
            "kb_tool_calls_total",
            "Tool calls by tool, transport (mcp, agent) and result.",
            ["tool", "transport", "result"],
            registry=r,
        )
        self.tool_latency = Histogram(
            "kb_tool_latency_seconds",
            "Tool call latency by tool.",
            ["tool"],
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.llm_cost = Counter(
            "kb_llm_cost_usd_total", "LLM cost of answers in USD (llm.price_in_per_1m / price_out_per_1m).", registry=r
        )
        self._answered = 0
        self._uncertain = 0

    def observe_answer(
        self,
        mode: str,
        uncertain: bool,
        evidence: float,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        self.answers.labels(mode=mode, uncertain=str(uncertain).lower()).inc()
        self.retrieval_score.observe(evidence)
        self._answered += 1
        self._uncertain += int(uncertain)
        if self.uncertain_rate is not None:
            self.uncertain_rate.set(self._uncertain / self._answered)
        if tokens_in or tokens_out:
            self.llm_tokens.labels(direction="in").inc(tokens_in)
            self.llm_tokens.labels(direction="out").inc(tokens_out)
        if cost_usd > 0:
            self.llm_cost.inc(cost_usd)

    def observe_tool_for(self, transport: str) -> Any:
        """A callback ``(tool, result, seconds)`` counting one transport's tool calls."""

        def observe(tool: str, result: str, seconds: float) -> None:
            self.tool_calls.labels(tool=tool, transport=transport, result=result).inc()
            self.tool_latency.labels(tool=tool).observe(seconds)

        return observe

    def set_bundle(self, path: str, checksum: str, model: str) -> None:
        if self._bundle_labels is not None:
            # 0 first: in multiprocess mode the old value stays in this worker's file after clear()
            self.bundle_info.labels(*self._bundle_labels).set(0)
        self.bundle_info.clear()
        self._bundle_labels = (path, checksum, model)
        self.bundle_info.labels(path=path, checksum=checksum, model=model).set(1)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
        answered = uncertain = 0.0
        for family in registry.collect():
            if family.name == "kb_answers":
                for sample in family.samples:
                    if sample.name == "kb_answers_total":
                        answered += sample.value
                        uncertain += sample.value if sample.labels.get("uncertain") == "true" else 0.0
        ratio = uncertain / answered if answered else 0.0
        body += (
            "# HELP kb_uncertain_ratio Share of answers flagged uncertain since start (all serving processes).\n"
            f"# TYPE kb_uncertain_ratio gauge\nkb_uncertain_ratio {ratio}\n"
        ).encode()
        return body, CONTENT_TYPE_LATEST

    def process_exit(self) -> None:
        """This serving process ends: its live gauges leave the merged view (multiprocess mode)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Pure ASGI middleware: counts every request and times it by route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                self.metrics.latency.labels(route=_route(scope)).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            self.metrics.requests.labels(route=_route(scope), method=_method(scope), status=str(status["code"])).inc()


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: dict) -> str:
    """The method as a label value; any other token a client sends is 'other' (labels stay bounded)."""
    method = scope.get("method", "")
    return method if method in _METHODS else "other"


def _route(scope: dict) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path or "unmatched"
