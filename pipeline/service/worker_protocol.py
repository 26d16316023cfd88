"""The slow-client deadlines of a ``kb serve --workers N`` process.

uvicorn pickles its config into each worker it spawns, so the protocol must be a class importable
by name (``protocol_class`` builds one per app at run time, which cannot be pickled). Its limits
come from the same settings the worker's app loads: the ``KBSERVE_WORKER_SPEC`` that ``kb serve``
puts in the environment before it starts the workers.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.service.http_limits import DeadlineMixin, reject_counter
from pipeline.service.worker_spec import worker_serve_settings

_serve = worker_serve_settings()


class WorkerH11Protocol(DeadlineMixin, H11Protocol):
    header_timeout_s = _serve.header_timeout_s
    body_timeout_s = _serve.body_timeout_s
    max_header_bytes = _serve.max_header_bytes
    max_connections = _serve.max_connections
    on_reject = None  # set by ``count_rejections_of`` once the worker's app (and its metrics) exists


def count_rejections_of(web: Any) -> None:
    """Protocol-level refusals of this worker (400/408/431/503 before any route) into its app's
    ``kb_requests_total``: in multiprocess mode, summed with every other worker's in /metrics."""
    counter = reject_counter(web)
    WorkerH11Protocol.on_reject = staticmethod(counter) if counter is not None else None  # type: ignore[assignment]  # a staticmethod on the class, called without self
