"""What each Celery task does, as plain functions over the shared workspace (no celery here).

A job is a JSON dict: ``workspace`` (absolute path every worker sees), ``run``, ``interview``,
``force`` and ``settings`` (the hash of the submitter's settings; a worker whose kb.yaml or
KB_* environment differs refuses the task rather than produce different files). Every task is
the stage function a local ``kb run`` calls, on one interview; outputs are the stages' own
atomic writes and freshness records, so a redelivered task finds them and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError, KbError
from pipeline.jobs import records
from pipeline.jobs.metrics import observe
from pipeline.jobs.steps import run_steps
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace, sha256_json

#: ``(limit, window) -> SharedBudget``: a distill task's share of its run's budget (pipeline.jobs.budget).
BudgetFactory = Callable[[float, Callable[[], "int | None"]], Any]

#: What the callback runs once every interview's chain is done (distill consolidates and writes).
FINAL_STEPS: tuple[str, ...] = ("distill", "check", "site", "export")


def settings_sha(settings: Settings) -> str:
    """The settings that shape outputs (the broker and worker options do not)."""
    return sha256_json(settings.model_dump(mode="json", exclude={"workers", "threads"}))


def open_job(job: dict[str, Any]) -> tuple[Settings, Workspace]:
    ws = Workspace.at(Path(job["workspace"]), discover=False)
    settings = Settings.load(ws.root)
    if job.get("settings") and settings_sha(settings) != job["settings"]:
        raise ConfigError(
            f"This worker's settings for {ws.root} differ from those 'kb run --via celery' was started with.",
            "Give workers the same kb.yaml and KB_* environment as the submitting machine (only broker and "
            "worker options may differ), then 'kb jobs retry RUN'.",
        )
    return settings, ws


def _failed(ws: Workspace | None, job: dict[str, Any], stage: str, why: str) -> dict[str, Any]:
    if ws is not None:
        records.record_task(ws, job["run"], stage, job["interview"], state="failed", why=why)
    return {"interview": job["interview"], "ok": False, "stage": stage, "why": why}


def _guard(stage: str, job: dict[str, Any], body: Callable[[Settings, Workspace], dict[str, Any]]) -> dict[str, Any]:
    """Run a per-interview task body; a KbError becomes a failed record (the other interviews go on)."""
    ws: Workspace | None = None
    with observe(stage) as outcome:
        try:
            settings, ws = open_job(job)
            records.record_task(ws, job["run"], stage, job["interview"], state="started")
            result = body(settings, ws)
        except KbError as exc:
            outcome("failed")
            return _failed(ws, job, stage, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        outcome(result.pop("outcome", "done"))
        return result


def transcribe(job: dict[str, Any]) -> dict[str, Any]:
    """asr queue: a recording's ASR output into its intermediate file, or an imported transcript."""

    def body(settings: Settings, ws: Workspace) -> dict[str, Any]:
        from pipeline.stages import transcribe as stage

        i = job["interview"]
        kind, outcome = stage.recognise_one(
            settings, ws, Reporter(), i, force=bool(job.get("force")), run_id=job["run"]
        )
        state = "skipped" if outcome in ("fresh", "cached") else "done"
        summary = {"fresh": "transcript is fresh", "cached": "ASR output found", "recognised": "ASR output written",
                   "transcribed": "transcript imported"}[outcome]  # fmt: skip
        records.record_task(ws, job["run"], "transcribe", i, state=state, summary=summary, kind=kind)
        return {"interview": i, "ok": True, "outcome": state, "kind": kind}

    return _guard("transcribe", job, body)


def _skip_after_failure(previous: dict[str, Any], job: dict[str, Any], stage: str) -> dict[str, Any]:
    _settings, ws = open_job(job)
    why = f"{previous.get('stage', 'an earlier stage')} failed"
    records.record_task(ws, job["run"], stage, job["interview"], state="skipped", why=why)
    return previous


def diarise(previous: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """diarise queue: diarisation and word-speaker assignment over the stored ASR output -> transcript.json.

    An imported transcript was written by the asr task: nothing to do here, and the record says so.
    """
    if not previous.get("ok"):
        return _skip_after_failure(previous, job, "diarise")

    def body(settings: Settings, ws: Workspace) -> dict[str, Any]:
        from pipeline.stages import transcribe as stage

        i = job["interview"]
        if stage.source_kind(settings, ws, i) != "audio":
            summary = "imported transcript: nothing to diarise"
            records.record_task(ws, job["run"], "diarise", i, state="skipped", summary=summary, kind="import")
            return {"interview": i, "ok": True, "outcome": "skipped"}
        force = bool(job.get("force"))
        report = stage.run(settings, ws, Reporter(), [i], force=force, keep_going=True, reuse_asr=True)
        if report.failed:
            return _failed(ws, job, "diarise", report.failed[i]) | {"outcome": "failed"}
        state = "skipped" if i in report.fresh else "done"
        records.record_task(ws, job["run"], "diarise", i, state=state, summary=str(report), kind="audio")
        return {"interview": i, "ok": True, "outcome": state}

    return _guard("diarise", job, body)


def distill(
    previous: dict[str, Any], job: dict[str, Any], task_id: str, budget: BudgetFactory | None = None
) -> dict[str, Any]:
    """llm queue: one interview's LLM windows into the window cache (nothing to do when extractive).

    ``budget(limit, window)``: the run's shared budget (``distill.max_cost_usd`` for the whole run).
    """
    if not previous.get("ok"):
        return _skip_after_failure(previous, job, "distill")

    def body(settings: Settings, ws: Workspace) -> dict[str, Any]:
        from pipeline.stages import distill as stage

        counters: dict[int | None, int] = {}
        limit = settings.distill.max_cost_usd
        shared: list[Any] = []

        def make_shared(window: Callable[[], int | None]) -> Any:
            assert budget is not None and limit is not None
            shared.append(budget(limit, window))
            return shared[0]

        def on_request(interview: str, window: int | None, r: Any) -> None:
            n = counters.get(window, 0)
            counters[window] = n + 1
            if shared:  # counted once in the run's budget, under the record's name
                shared[0].settle(window, r.cost_usd)
            records.record_request(
                ws,
                job["run"],
                task_id,
                window,
                n,
                {"interview": interview, "window": window, "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                 "cost_usd": r.cost_usd, "reask": r.reask, "retries": r.retries, "status": r.status},
            )  # fmt: skip

        i = job["interview"]
        report = stage.prefetch(
            settings, ws, Reporter(), i, force=bool(job.get("force")), on_request=on_request,
            shared_budget=make_shared if budget is not None else None,
        )  # fmt: skip
        state = "skipped" if report.skipped or report.backend != "llm" else "done"
        records.record_task(ws, job["run"], "distill", i, state=state, summary=str(report), backend=report.backend)
        return {"interview": i, "ok": True, "outcome": state}

    return _guard("distill", job, body)


def finalize(
    results: list[dict[str, Any]], job: dict[str, Any], spent: Callable[[], float] | None = None
) -> dict[str, Any]:
    """index queue, the run's one writer: merge the LLM ledger, then distill (consolidate) → check → site → export.

    With a run budget, consolidation may spend only what the distill tasks left (``spent()``).
    """
    job = {**job, "interview": records.RUN_SCOPE}
    with observe("finalize") as outcome:
        settings, ws = open_job(job)
        run_id = job["run"]
        records.record_task(ws, run_id, "finalize", records.RUN_SCOPE, state="started")
        try:
            merged = _merge_ledger(settings, ws, run_id, len(results))
            limit = settings.distill.max_cost_usd
            if limit is not None and spent is not None:
                left = max(0.0, limit - spent())
                settings = settings.model_copy(
                    update={"distill": settings.distill.model_copy(update={"max_cost_usd": left})}
                )
            reporter = Reporter()
            names = [n for n in FINAL_STEPS if n in job.get("steps", FINAL_STEPS)]
            result = run_steps(settings, ws, reporter, names, force=bool(job.get("force")))
        except KbError as exc:
            outcome("failed")
            why = exc.message + (f" ({exc.hint})" if exc.hint else "")
            records.record_task(ws, run_id, "finalize", records.RUN_SCOPE, state="failed", why=why, fatal=True)
            return {"ok": False, "why": why}
        failures = [[r.get("stage", "?"), r["interview"], r.get("why", "")] for r in results if not r.get("ok")]
        failures += [list(f) for f in result.failures]
        summaries = {name: str(rep) for name, rep in result.results.items()}
        check_errors = result.check.errors if result.check is not None else 0
        records.record_task(
            ws, run_id, "finalize", records.RUN_SCOPE, state="done", summaries=summaries, failures=failures,
            check_errors=check_errors, requests_merged=merged, warnings=[m for lv, m in reporter.lines if lv == "warning"],
        )  # fmt: skip
        return {"ok": True, "failures": failures, "check_errors": check_errors}


def _merge_ledger(settings: Settings, ws: Workspace, run_id: str, interviews: int) -> int:
    from pipeline.index.runlog import merge_run
    from pipeline.stages.distill import llm as dl

    found = records.requests(ws, run_id)
    if not found:
        return 0
    return merge_run(
        ws.run_log, run_id, found, backend="llm", model=settings.llm.model, prompt=dl.PROMPT, status="ok",
        interviews=interviews,
    )  # fmt: skip
