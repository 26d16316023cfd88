"""The Celery app of kb's workers (the only module that imports celery, lazily) and run submission.

Queues are explicit: ``asr`` (a recording's ASR output into its intermediate file, or an import; a
worker serving it reserves one task at a time), ``diarise`` (diarisation and speaker assignment over
that file -> transcript.json), ``llm`` (distillation windows) and ``index`` (the run's callback:
consolidate, check, site, export). JSON is the only serializer. The per-interview tasks acknowledge late (and are re-queued when their worker dies) because they are idempotent:
their outputs are content-addressed and written atomically, so a redelivered task finds them. The
callback, the run's one writer, acknowledges early (``kb jobs retry`` reruns it). Time limits are
checked: soft < hard < the broker's visibility timeout, or a slow task would run twice.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Settings, WorkersSettings
from pipeline.errors import ConfigError, KbError, MissingDependencyError
from pipeline.jobs import budget, guard, records, tasks
from pipeline.jobs.broker import ping
from pipeline.jobs.steps import STEPS
from pipeline.redaction import redact_url as redact
from pipeline.workspace import Workspace, sha256_json, sha256_text

QUEUES: tuple[str, ...] = ("asr", "diarise", "llm", "index")
ROUTES = {"kb.transcribe": "asr", "kb.diarise": "diarise", "kb.distill": "llm", "kb.finalize": "index"}


def validate_limits(w: WorkersSettings) -> None:
    """soft < hard < visibility timeout, or a ConfigError that says which setting to change."""
    soft, hard, vis = w.soft_time_limit_s, w.time_limit_s, w.visibility_timeout_s
    if not soft < hard < vis:
        raise ConfigError(
            f"Worker time limits must satisfy soft < hard < visibility timeout; got workers.soft_time_limit_s={soft:g}, "
            f"workers.time_limit_s={hard:g}, workers.visibility_timeout_s={vis:g}.",
            "A task still running past the visibility timeout is handed to a second worker. Raise "
            "workers.visibility_timeout_s above workers.time_limit_s (kb.yaml or KB_WORKERS_VISIBILITY_TIMEOUT_S), "
            "or lower the time limits.",
        )


def make_app(settings: Settings, broker: str | None = None, *, queues: tuple[str, ...] = QUEUES) -> Any:
    """The Celery app for these settings (``broker`` = the --broker flag, which wins)."""
    try:
        from celery import Celery
        from kombu import Queue
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "celery", "workers", "kb worker / kb run --via celery") from None
    w = settings.workers
    validate_limits(w)
    url = broker or w.broker_url
    app = Celery("kb", broker=url, backend=w.result_url or url, set_as_current=False)
    # a dead worker's unacknowledged tasks come back after the visibility timeout: sweep for them
    # often enough that a short timeout means a quick redelivery (kombu's default is ~100 s)
    sweep = max(1, min(10, int(w.visibility_timeout_s // 4)))
    transport = {
        "visibility_timeout": w.visibility_timeout_s,
        "unacked_restore_interval": sweep,
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],
        task_default_queue="index",
        task_routes={name: {"queue": q, "routing_key": q} for name, q in ROUTES.items()},
        worker_prefetch_multiplier=1 if "asr" in queues else w.prefetch,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_soft_time_limit=w.soft_time_limit_s,
        task_time_limit=w.time_limit_s,
        task_acks_late=False,
        task_track_started=True,
        result_expires=7 * 86400,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=3,
    )
    _register(app, w.run_lock_s)
    app.kb_url = url
    return app


def _register(app: Any, lock_s: float) -> None:
    """The tasks; each renews its run's hold on the workspace when it starts, the callback releases it."""
    idempotent: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True, "shared": False, "bind": True}

    def renew(job: dict[str, Any]) -> None:
        guard.renew(app, job["workspace"], job["run"], lock_s)

    @app.task(name="kb.transcribe", **idempotent)
    def transcribe(self: Any, job: dict[str, Any]) -> dict[str, Any]:
        renew(job)
        return tasks.transcribe(job)

    @app.task(name="kb.diarise", **idempotent)
    def diarise(self: Any, previous: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        renew(job)
        return tasks.diarise(previous, job)

    @app.task(name="kb.distill", **idempotent)
    def distill(self: Any, previous: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        renew(job)
        tid = self.request.id

        def shared(limit: float, window: Any) -> budget.RunBudget:
            return budget.RunBudget(app, job["run"], limit, tid, window)

        return tasks.distill(previous, job, tid, shared)

    @app.task(name="kb.finalize", acks_late=False, shared=False)
    def finalize(results: list[dict[str, Any]], job: dict[str, Any]) -> dict[str, Any]:
        try:
            return tasks.finalize(results, job, lambda: budget.spent(app, job["run"]))
        finally:  # the run is over (done or failed): the next one may start
            guard.release(app, job["workspace"], job["run"])


#: What a worker imports before it forks its pool, per queue it serves (a first task is then not
#: slower than the others, nor cut by a short soft time limit while importing).
WARM: dict[str, tuple[str, ...]] = {
    "asr": ("pipeline.stages.transcribe",),
    "diarise": ("pipeline.stages.transcribe",),
    "llm": ("pipeline.stages.distill", "instructor", "openai"),
    "index": ("pipeline.stages.distill", "pipeline.stages.check", "pipeline.stages.site", "pipeline.stages.export"),
}


def warm(queues: tuple[str, ...]) -> None:
    import importlib

    for name in dict.fromkeys(m for q in queues for m in WARM.get(q, ())):
        try:
            importlib.import_module(name)
        except ImportError:  # an extra this worker lacks: the task says so when it needs it
            pass


def queue_depth(app: Any) -> dict[str, int]:
    """Tasks waiting in each queue (for the kb_jobs_queue_depth gauge)."""
    out: dict[str, int] = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for q in QUEUES:
            try:
                out[q] = int(channel.queue_declare(queue=q, passive=True).message_count)
            except conn.channel_errors:  # Redis keeps no key for an empty queue: "not found" is 0
                out[q] = 0
    return out


def task_ids(settings: Settings, ws: Workspace, interview: str, force: bool) -> dict[str, str]:
    """Content-addressed ids of an interview's transcribe (asr), diarise and distill tasks.

    From the hashes kb run's freshness records hold (the transcript's source, importer, people and
    ASR settings; then distillation's backend, model, prompt and settings): the same inputs give
    the same ids, so a redelivered or resubmitted task is the same task and finds its outputs.
    """
    from pipeline.stages import distill, transcribe

    try:
        source = transcribe.inputs_hash(settings, ws, interview)
    except KbError as exc:  # the task will fail with this message; its id still names the attempt
        source = sha256_text(exc.message)
    tid = "transcribe-" + sha256_json({"interview": interview, "inputs": source, "force": force})[:32]
    zid = "diarise-" + sha256_json({"after": tid})[:32]  # the transcribe inputs hold the diarise settings
    did = "distill-" + sha256_json({"after": tid, "settings": distill.settings_hash(settings)})[:32]
    return {"transcribe": tid, "diarise": zid, "distill": did}


def submit(
    settings: Settings,
    ws: Workspace,
    *,
    force: bool = False,
    broker: str | None = None,
    interviews: list[str] | None = None,
    from_stage: str = "transcribe",
    run_id: str | None = None,
    steps: tuple[str, ...] | list[str] = STEPS,
    wait_turn: bool = False,
    on_wait: Any = None,
) -> str:
    """Send a run: per interview a chain transcribe (asr) → diarise → distill (llm), grouped, with the callback.

    ``steps`` are kb run's (``--only`` / ``--skip``): the chains hold the per-interview ones, the
    callback runs the selected ones of distill (consolidate and write), check, site, export.
    The run holds the workspace until its callback ends (``guard``): while another run holds it,
    this one is refused, or with ``wait_turn`` waits for it (``on_wait(run)`` is told once).
    """
    app = make_app(settings, broker)
    ping(app)
    new = run_id is None
    run_id = run_id or records.new_run_id()
    root = str(ws.root.resolve())
    try:
        guard.acquire(
            app, root, run_id, settings.workers.run_lock_s, finished=lambda other: _finished(ws, other),
            wait_s=settings.workers.wait_timeout_s if wait_turn else None, on_wait=on_wait,
        )  # fmt: skip
        try:
            _send(app, settings, ws, run_id, new, interviews, from_stage, force, steps)
        except BaseException:
            guard.release(app, root, run_id)
            raise
    finally:
        app.close()
    return run_id


def _send(
    app: Any, settings: Settings, ws: Workspace, run_id: str, new: bool, interviews: list[str] | None,
    from_stage: str, force: bool, steps: Any,
) -> None:  # fmt: skip
    from celery import chord, group

    todo = ws.interview_ids() if interviews is None else interviews
    job = {"workspace": str(ws.root.resolve()), "run": run_id, "force": force,
           "settings": tasks.settings_sha(settings), "steps": list(steps)}  # fmt: skip
    if "transcribe" not in steps:
        from_stage = "distill" if from_stage in ("transcribe", "diarise") else from_stage
    if from_stage not in records.INTERVIEW_STAGES or ("distill" not in steps and from_stage == "distill"):
        todo = []  # only the callback's steps
    chains, ids = [], {}
    for i in todo:
        ids[i] = task_ids(settings, ws, i, force)
        chains.append(_chain(app, {**job, "interview": i}, ids[i], from_stage, steps))

    meta: dict[str, Any] = records.read_run(ws, run_id) if not new else {"submitted": records.now(), "force": force}
    meta.update(interviews=sorted(set(meta.get("interviews", [])) | set(todo)) if not new else todo)
    meta.setdefault("tasks", {}).update(ids)
    meta["finalize"] = f"{run_id}-finalize-{sha256_text(records.now())[:8]}"
    meta["broker"] = redact(app.kb_url)
    meta["steps"] = list(steps)
    records.write_run(ws, run_id, meta)
    if not new:  # a resent run is running again until its new callback says otherwise
        records.record_task(ws, run_id, "finalize", records.RUN_SCOPE, state="queued")
    body = app.signature("kb.finalize", kwargs={"job": job}, task_id=meta["finalize"], queue="index")
    sent = chord(group(chains), body).apply_async() if chains else body.clone(args=([],)).apply_async()
    # nobody waits on these handles (kb jobs reads the workspace): drop the result subscriptions of
    # every task sent from here now, while the broker is there, rather than in their finalisers
    # (which would retry a gone broker for ~20 s wherever the garbage collector runs them)
    app.backend.remove_pending_result(sent)
    consumer = app.backend.result_consumer
    for tid in [meta["finalize"], *(t for one in ids.values() for t in one.values())]:
        consumer.cancel_for(tid)


def _finished(ws: Workspace, run_id: str) -> bool:
    try:
        return records.status(ws, run_id).outcome in ("done", "failed")
    except KbError:  # no records of it here (another machine's path?): trust the lock
        return False


def _chain(app: Any, job: dict[str, Any], ids: dict[str, str], from_stage: str, steps: Any) -> Any:
    """One interview's tasks from ``from_stage`` on: transcribe (asr) → diarise → distill (llm)."""
    sigs = {
        "transcribe": app.signature("kb.transcribe", args=(job,), task_id=ids["transcribe"], queue="asr"),
        "diarise": app.signature("kb.diarise", kwargs={"job": job}, task_id=ids["diarise"], queue="diarise"),
        "distill": app.signature("kb.distill", kwargs={"job": job}, task_id=ids["distill"], queue="llm"),
    }
    wanted = [s for s in ("transcribe", "diarise") if "transcribe" in steps] + ["distill"] * ("distill" in steps)
    names = wanted[wanted.index(from_stage) :] if from_stage in wanted else []
    if names and names[0] != "transcribe":  # a resent chain starts after a stage that went well
        sigs[names[0]] = sigs[names[0]].clone(args=({"interview": job["interview"], "ok": True},))
    from celery import chain

    return chain(*(sigs[n] for n in names))


def callback_state(app: Any, meta: dict[str, Any]) -> tuple[str, str]:
    """(Celery state, error text) of a run's callback: FAILURE when a task raised a bug, not a KbError."""
    got = app.backend.get_task_meta(meta["finalize"])  # not AsyncResult: no result subscription left behind
    state = str(got.get("status", "PENDING"))
    return state, (str(got.get("result")) if state == "FAILURE" else "")
