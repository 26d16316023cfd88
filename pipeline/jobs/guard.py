"""One Celery run per workspace at a time: a Redis lock named by the workspace path, holding the run id.

Two runs on one workspace would both end in a callback rewriting atoms/, the site and the bundle.
``kb run --via celery`` takes the lock when it submits (refused, naming the running run, or with
``--wait-turn`` waiting for it); every task of the run renews it when it starts, and the run's
callback releases it. A run whose workers all died leaves a lock that lapses ``workers.run_lock_s``
after its last task started; one whose records say it finished is taken over at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pipeline.errors import ConflictError
from pipeline.jobs.broker import with_redis
from pipeline.workspace import sha256_text

PREFIX = "kb:run-lock:"

# delete the key only when it still holds this run's id (never another run's lock)
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


def key(workspace: str) -> str:
    return PREFIX + sha256_text(workspace)[:24]


def _get(r: Any, workspace: str) -> str | None:
    """The run id holding the workspace's lock (the client returns bytes), or None."""
    got = r.get(key(workspace))
    return got.decode() if isinstance(got, bytes) else got


def holder(app: Any, workspace: str) -> str | None:
    return with_redis(app, lambda r: _get(r, workspace))


def try_acquire(app: Any, workspace: str, run_id: str, ttl_s: float) -> str | None:
    """Take the lock for ``run_id`` (or renew it when ``run_id`` holds it): None, or the holder's run id."""
    ms = max(1000, int(ttl_s * 1000))

    def take(r: Any) -> str | None:
        if r.set(key(workspace), run_id, nx=True, px=ms):
            return None
        if r.eval(_RENEW, 1, key(workspace), run_id, ms):
            return None
        return _get(r, workspace) or ""

    return with_redis(app, take)


def acquire(
    app: Any,
    workspace: str,
    run_id: str,
    ttl_s: float,
    *,
    finished: Callable[[str], bool],
    wait_s: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> None:
    """The workspace's lock for ``run_id``, or a ConflictError naming the run that holds it.

    ``finished(run)`` says from the run records whether a holder is over (its lock is then stale
    and taken over); ``wait_s`` waits that long for the holder to finish instead of refusing.
    """
    deadline = time.monotonic() + (wait_s or 0)
    said: str | None = None
    while True:
        other = try_acquire(app, workspace, run_id, ttl_s)
        if other is None:
            return
        if not other:  # released between our SET and GET: try again
            continue
        if finished(other):  # its callback ended without releasing (killed): stale
            release(app, workspace, other)
            continue
        if wait_s is None or time.monotonic() > deadline:
            raise ConflictError(
                f"Another Celery run, {other}, is still running on this workspace ({workspace}); "
                "two runs would both rewrite atoms/, the site and the bundle.",
                f"Follow it with 'kb jobs status {other}' (or 'kb jobs watch {other}') and start this run when it "
                "is done, or add --wait-turn to wait for it and then start. A run whose workers all died "
                "releases the workspace workers.run_lock_s after its last task started.",
            )
        if on_wait is not None and said != other:
            on_wait(other)
            said = other
        time.sleep(0.5)


def renew(app: Any, workspace: str, run_id: str, ttl_s: float) -> None:
    """A task of ``run_id`` started: the run is alive, keep its lock (no-op when it does not hold it)."""
    with_redis(app, lambda r: r.eval(_RENEW, 1, key(workspace), run_id, max(1000, int(ttl_s * 1000))))


def release(app: Any, workspace: str, run_id: str) -> bool:
    """Release the lock if ``run_id`` holds it (the callback, or the submitter after a failed callback)."""
    return bool(with_redis(app, lambda r: r.eval(_RELEASE, 1, key(workspace), run_id)))
