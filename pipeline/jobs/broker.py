"""The Celery broker's Redis, for the app and for the keys kb keeps there itself (the run lock, the run budget).

Below ``pipeline.jobs.app`` (which imports ``guard`` and ``budget``) so that all three reach Redis the same
way without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.errors import KbError
from pipeline.redaction import redact_url as redact


def ping(app: Any) -> None:
    """Reach the broker now, or a KbError naming the fix (instead of Celery retrying forever)."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=3)
    except Exception as exc:  # noqa: BLE001  kombu raises its own OperationalError and the transport's errors
        raise KbError(
            f"Cannot reach the Celery broker at {redact(app.kb_url)} ({type(exc).__name__}: {exc}).",
            "Start Redis (e.g. 'redis-server' or 'redis-server --unixsocket /tmp/redis.sock'), or point kb at a "
            "running one with --broker URL / KB_WORKERS_BROKER_URL / workers.broker_url in kb.yaml.",
        ) from None


def with_redis(app: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(client)`` with a Redis client of the app's broker connection (returned to the pool after)."""
    with app.connection_for_write() as conn:
        return fn(conn.default_channel.client)
