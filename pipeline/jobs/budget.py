"""``distill.max_cost_usd`` for a whole Celery run: one budget all its distill tasks spend from.

Three Redis keys per run: ``spent`` (the settled cost, INCRBYFLOAT), ``counted`` (request name ->
cost: a request is counted once, under the name its run-log record has, so a redelivered task
rewriting a record does not pay twice on paper) and ``held`` (request name -> the upper-bound
estimate of a request under way). Before each LLM request a task reserves its estimate in one
atomic script: refused when spent + held by others + this estimate would pass the limit, so two
workers never overshoot together. A killed task's reservation is overwritten by its redelivery's
request of the same name. The run's callback consolidates with what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.errors import BudgetExceededError
from pipeline.jobs.broker import with_redis
from pipeline.jobs.records import request_name

TTL_S = 7 * 86400

_RESERVE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local held = 0
local r = redis.call('HGETALL', KEYS[2])
for i = 1, #r, 2 do if r[i] ~= ARGV[1] then held = held + tonumber(r[i + 1]) end end
if spent + held + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {0, tostring(spent), tostring(held)} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {1, tostring(spent), tostring(held)}
"""

_SETTLE = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 1 then redis.call('INCRBYFLOAT', KEYS[1], ARGV[2]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return redis.call('GET', KEYS[1])
"""


def _keys(run_id: str) -> list[str]:
    return [f"kb:budget:{run_id}:{part}" for part in ("spent", "held", "counted")]


def spent(app: Any, run_id: str) -> float:
    """What the run's distill tasks have spent so far (settled requests)."""
    got = with_redis(app, lambda r: r.get(_keys(run_id)[0]))
    return float(got or 0.0)


class RunBudget:
    """One distill task's view of its run's budget (``SharedBudget`` for the LLM client).

    Requests are named like the run log's records: (task id, window, n-th request of that window);
    ``window()`` says which window the client is working on.
    """

    def __init__(self, app: Any, run_id: str, limit: float, task_id: str, window: Callable[[], int | None]):
        self.app, self.run_id, self.limit, self.task_id, self.window = app, run_id, limit, task_id, window
        self.counts: dict[int | None, int] = {}

    def current(self) -> str:
        w = self.window()
        return request_name(self.task_id, w, self.counts.get(w, 0))

    def reserve(self, estimate: float) -> None:
        keys, name = _keys(self.run_id), self.current()
        ok, done, held = with_redis(
            self.app, lambda r: r.eval(_RESERVE, 2, keys[0], keys[1], name, repr(estimate), repr(self.limit), TTL_S)
        )
        if not int(ok):
            done_f, held_f = float(done), float(held)
            under_way = f" (and ${held_f:.4f} in requests under way)" if held_f else ""
            raise BudgetExceededError(
                f"Stopped before exceeding the run's budget: run {self.run_id} has spent ${done_f:.4f}{under_way}, "
                f"the next request could cost up to ${estimate:.4f}, distill.max_cost_usd is ${self.limit:.4f} "
                "for the whole run (all workers).",
                f"Raise distill.max_cost_usd (kb.yaml or KB_DISTILL_MAX_COST_USD on every worker), then "
                f"'kb jobs retry {self.run_id}': finished windows are cached, so the retry resumes.",
            )

    def release(self) -> None:
        keys, name = _keys(self.run_id), self.current()
        with_redis(self.app, lambda r: r.hdel(keys[1], name))

    def settle(self, window: int | None, cost: float) -> str:
        """A request of ``window`` completed at ``cost``: count it once; returns its record name."""
        keys = _keys(self.run_id)
        n = self.counts.get(window, 0)
        name = request_name(self.task_id, window, n)
        with_redis(self.app, lambda r: r.eval(_SETTLE, 3, *keys, name, repr(float(cost)), TTL_S))
        self.counts[window] = n + 1
        return name
