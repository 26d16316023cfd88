"""Prometheus metrics of one app (its own registry, so several apps in one process don't clash)."""

from __future__ import annotations

import time
from typing import Any


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
        self.uncertain_rate = Gauge("kb_uncertain_ratio", "Share of answers flagged uncertain since start.", registry=r)
        self.reloads = Counter("kb_bundle_reloads_total", "Bundle reload attempts by result.", ["result"], registry=r)
        self.bundle_info = Gauge(
            "kb_bundle_info", "The bundle being served (value 1).", ["path", "checksum", "model"], registry=r
        )
        self.llm_tokens = Counter("kb_llm_tokens_total", "LLM tokens used for answers.", ["direction"], registry=r)
        self.llm_cost = Counter(
            "kb_llm_cost_usd_total", "LLM cost of answers in USD (llm.price_in_per_1m / price_out_per_1m).", registry=r
        )
        self._answered = 0
        self._uncertain = 0

    def observe_answer(
        self, mode: str, uncertain: bool, evidence: float, tokens_in: int = 0, tokens_out: int = 0, cost_usd: float = 0.0
    ) -> None:
        self.answers.labels(mode=mode, uncertain=str(uncertain).lower()).inc()
        self.retrieval_score.observe(evidence)
        self._answered += 1
        self._uncertain += int(uncertain)
        self.uncertain_rate.set(self._uncertain / self._answered)
        if tokens_in or tokens_out:
            self.llm_tokens.labels(direction="in").inc(tokens_in)
            self.llm_tokens.labels(direction="out").inc(tokens_out)
        if cost_usd > 0:
            self.llm_cost.inc(cost_usd)

    def set_bundle(self, path: str, checksum: str, model: str) -> None:
        self.bundle_info.clear()
        self.bundle_info.labels(path=path, checksum=checksum, model=model).set(1)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
            self.metrics.requests.labels(route=_route(scope), method=scope["method"], status=str(status["code"])).inc()


def _route(scope: dict) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path or "unmatched"
