"""``kb worker``'s Prometheus metrics: jobs by stage and outcome, running jobs, durations, queue depth.

Tasks run in Celery's pool processes, so the counters use prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by ``kb worker`` before anything imports prometheus_client);
the worker's main process serves ``/metrics`` with the merged values plus the queue depth, read
from the broker at scrape time. ``catalogue_registry()`` lists the families for the Grafana
dashboard generator (``kb monitoring dashboard``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

STAGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


def _families(registry: Any | None) -> dict[str, Any]:
    from prometheus_client import Counter, Gauge, Histogram

    kw: dict[str, Any] = {"registry": registry} if registry is not None else {}
    return {
        "jobs": Counter("kb_jobs", "Worker tasks finished, by stage and outcome.", ["stage", "outcome"], **kw),
        "running": Gauge(
            "kb_jobs_running", "Worker tasks running now, by stage.", ["stage"], multiprocess_mode="livesum", **kw
        ),
        "seconds": Histogram(
            "kb_jobs_duration_seconds", "Worker task duration, by stage.", ["stage"], buckets=STAGE_BUCKETS, **kw
        ),
    }


_live: dict[str, Any] | None = None


def _metrics() -> dict[str, Any] | None:
    """The process's metric objects (default registry), or None without prometheus-client."""
    global _live
    if _live is None:
        try:
            _live = _families(None)
        except ImportError:
            return None
    return _live


class observe:
    """``with observe(stage) as done: ...; done("skipped")``: counts the task, its outcome and time."""

    def __init__(self, stage: str):
        self.stage = stage
        self.outcome = "done"

    def __enter__(self) -> Callable[[str], None]:
        import time

        self._t0 = time.perf_counter()
        m = _metrics()
        if m is not None:
            m["running"].labels(self.stage).inc()
        return self._set

    def _set(self, outcome: str) -> None:
        self.outcome = outcome

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        import time

        m = _metrics()
        if m is None:
            return
        m["running"].labels(self.stage).dec()
        m["jobs"].labels(self.stage, "failed" if exc_type is not None else self.outcome).inc()
        m["seconds"].labels(self.stage).observe(time.perf_counter() - self._t0)


class QueueDepth:
    """A collector reading each queue's length from the broker when Prometheus scrapes."""

    def __init__(self, depth: Callable[[], dict[str, int]]):
        self.depth = depth

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("kb_jobs_queue_depth", "Tasks waiting in each queue.", labels=["queue"])
        try:
            for queue, n in sorted(self.depth().items()):
                family.add_metric([queue], float(n))
        except Exception:  # noqa: BLE001  a broker that is down must not break the scrape; the depth is just absent
            pass
        yield family

    def describe(self) -> list[Any]:
        return []


def catalogue_registry() -> Any:
    """A registry with every family ``kb worker`` exposes (for the dashboard generator)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    _families(registry)
    registry.register(QueueDepth(lambda: {}))
    return registry


def serve(port: int, depth: Callable[[], dict[str, int]]) -> Any:
    """Start the ``/metrics`` HTTP server of the worker's main process (merged over its pool processes)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(QueueDepth(depth))
    return start_http_server(port, addr="0.0.0.0", registry=registry)


def mark_dead_on_exit() -> None:
    """A pool process that exits (recycled, or at shutdown) drops its livesum gauge.

    Without this its last ``kb_jobs_running`` value would stay in the merged sum; counters and
    histograms keep what it counted, as prometheus-client's multiprocess mode intends. Celery sends
    the signal from the exiting child; a child killed outright cannot, and its value stays until
    ``kb worker`` restarts (each start takes a fresh multiprocess directory).
    """
    from celery.signals import worker_process_shutdown

    def dead(pid: int | None = None, **_: Any) -> None:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())

    worker_process_shutdown.connect(dead, weak=False)
