"""Workers: ``kb worker`` (a Celery worker), ``kb jobs status|watch|retry``, and ``kb run --via celery``."""

from __future__ import annotations

import os
import time
from typing import Any

import typer

from pipeline.cli._common import console, err_console, state
from pipeline.cli.root import app
from pipeline.errors import KbError

jobs = typer.Typer(help="Follow and retry runs sent to Celery workers (kb run --via celery).", no_args_is_help=True)
app.add_typer(jobs, name="jobs")

BROKER_HELP = "Celery broker URL (redis://HOST:6379/0 or redis+socket:///path); default workers.broker_url."


@app.command("worker")
def worker_cmd(
    ctx: typer.Context,
    queues: str = typer.Option("asr,diarise,llm,index", "--queues", "-Q", help="Queues to serve, comma-separated."),
    concurrency: int | None = typer.Option(None, "-c", "--concurrency", min=1, help="Task processes."),
    metrics_port: int | None = typer.Option(None, "--metrics-port", help="Serve Prometheus /metrics on this port."),
    broker: str | None = typer.Option(None, "--broker", help=BROKER_HELP),
    loglevel: str = typer.Option("INFO", "--loglevel", help="Celery log level."),
) -> None:
    """Run a Celery worker for this workspace's pipeline tasks (stop it with Ctrl-C)."""
    from pipeline.jobs.app import QUEUES

    chosen = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown or not chosen:
        raise typer.BadParameter(f"unknown queue(s) {', '.join(unknown) or '(none)'}; queues: {', '.join(QUEUES)}")
    settings = state(ctx).settings(**{"workers.broker_url": broker})
    if metrics_port is not None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        # before prometheus_client is imported anywhere: the pool processes write here, /metrics merges
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kb-worker-metrics-")
    from pipeline.jobs import app as jobs_app

    celery = jobs_app.make_app(settings, queues=chosen)
    jobs_app.ping(celery)
    jobs_app.warm(chosen)
    if metrics_port is not None:
        from pipeline.jobs import metrics

        metrics.serve(metrics_port, lambda: jobs_app.queue_depth(celery))
        metrics.mark_dead_on_exit()
        err_console.print(f"kb worker: metrics on http://0.0.0.0:{metrics_port}/metrics", markup=False)
    n = concurrency or settings.workers.concurrency
    err_console.print(
        f"kb worker: queues {','.join(chosen)}, {n} process(es), broker {jobs_app.redact(celery.kb_url)}", markup=False
    )
    argv = ["worker", "-Q", ",".join(chosen), "-c", str(n), "-P", "prefork", "--loglevel", loglevel, "-O", "fair"]
    argv += ["-n", f"kb-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    celery.worker_main(argv)


def _progress_line(st: Any) -> str:
    done = st.finished
    return f"run {st.run_id}: {done}/{st.total} task(s) finished, {st.requests} LLM request(s) logged"


def wait(ctx: typer.Context, run_id: str, settings: Any, *, timeout: float, poll: float = 0.3) -> Any:
    """Follow a run until its callback finishes (a progress bar on a terminal); returns its status."""
    import sys

    from pipeline.jobs import app as jobs_app
    from pipeline.jobs import records

    ws = state(ctx).workspace
    celery = jobs_app.make_app(settings)
    deadline = time.monotonic() + timeout
    bar = None
    if sys.stderr.isatty() and not os.environ.get("CI"):
        from rich.progress import Progress

        bar = Progress(console=err_console, transient=True)
        bar.start()
    try:
        task = bar.add_task(f"run {run_id}", total=None) if bar else None
        while True:
            st = records.status(ws, run_id)
            if bar is not None and task is not None:
                bar.update(task, total=st.total, completed=st.finished)
            if st.outcome in ("done", "failed"):
                return st
            cstate, why = jobs_app.callback_state(celery, st.meta)
            if cstate == "FAILURE":  # a bug, not a KbError: its finally released the workspace, or we do
                jobs_app.guard.release(celery, str(ws.root.resolve()), run_id)
                raise KbError(
                    f"run {run_id} failed in a worker: {why}", f"See the worker's log; then 'kb jobs retry {run_id}'."
                )
            if time.monotonic() > deadline:
                raise KbError(
                    f"run {run_id} is still running after {timeout:g} s ({_progress_line(st)}).",
                    f"Follow it with 'kb jobs watch {run_id}'; is a 'kb worker' serving every queue?",
                )
            time.sleep(poll)
    finally:
        celery.close()
        if bar is not None:
            bar.stop()


def report_run(st: Any) -> None:
    """Print a finished run like ``kb run`` prints its steps; KbError / exit 3 like kb run."""
    final = st.tasks.get(("finalize", "_run"), {})
    for name, summary in (final.get("summaries") or {}).items():
        console.print(f"{name}: {summary}", markup=False)
    if final.get("state") == "failed":
        raise KbError(f"run {st.run_id} failed: {final.get('why')}", f"Fix it, then 'kb jobs retry {st.run_id}'.")
    failures = final.get("failures") or []
    if failures:
        for stage, iid, why in failures:
            err_console.print(f"failed: {stage} {iid}: {why}", style="red", markup=False)
        raise KbError(
            f"{len(failures)} interview(s) failed ({', '.join(f[1] for f in failures)}); the rest were processed",
            f"Fix what each failure line says, then 'kb jobs retry {st.run_id}'.",
        )
    if final.get("check_errors"):
        raise typer.Exit(3)


def run_via_celery(
    ctx: typer.Context,
    *,
    force: bool,
    broker: str | None,
    wait_for: bool,
    steps: list[str] | None = None,
    wait_turn: bool = False,
) -> None:
    """``kb run --via celery``: submit, print the run id, and (by default) wait and report like kb run."""
    from pipeline.jobs import app as jobs_app

    st = state(ctx)
    settings = st.settings(**{"workers.broker_url": broker})

    def waiting(other: str) -> None:
        err_console.print(f"waiting for run {other} to finish on this workspace (kb jobs watch {other})", markup=False)

    run_id = jobs_app.submit(
        settings, st.workspace, force=force, steps=steps or jobs_app.STEPS, wait_turn=wait_turn, on_wait=waiting
    )
    console.print(f"run id: {run_id}", markup=False)
    if not wait_for:
        console.print(f"Follow it with: kb jobs watch {run_id}", markup=False)
        return
    report_run(wait(ctx, run_id, settings, timeout=settings.workers.wait_timeout_s))


def _resolve(ctx: typer.Context, run_id: str | None) -> str:
    from pipeline.jobs import records

    if run_id:
        return run_id
    found = records.runs(state(ctx).workspace)
    if not found:
        raise KbError("No Celery run in this workspace yet.", "Start one with 'kb run --via celery'.")
    return found[0]


def _table(st: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"run {st.run_id}: {st.outcome}")
    stages = ("transcribe", "diarise", "distill")
    for col in ("interview", "asr", *stages[1:], "worker pid", "attempts"):
        table.add_column(col)
    for i in st.interviews:
        recs = [st.tasks.get((s, i), {}) for s in stages]
        pids = ",".join(str(r["pid"]) for r in recs if r.get("pid"))
        attempts = str(max((int(r.get("attempts", 0)) for r in recs), default=0))
        table.add_row(i, *(st.state(s, i) for s in stages), pids, attempts)
    final = st.tasks.get(("finalize", "_run"), {})
    table.add_row("(callback)", "", "", st.state("finalize", "_run"), str(final.get("pid", "")), "")
    return table


@jobs.command("status")
def status_cmd(
    ctx: typer.Context,
    run_id: str | None = typer.Argument(None, metavar="RUN", help="Run id (default: the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print the task records as JSON."),
) -> None:
    """Per-interview stage progress of a run (read from the workspace; no broker needed)."""
    import json

    from pipeline.jobs import records

    st = records.status(state(ctx).workspace, _resolve(ctx, run_id))
    if as_json:
        tasks = [st.tasks[k] for k in sorted(st.tasks)]
        console.print_json(
            json.dumps({"run": st.run_id, "outcome": st.outcome, "requests": st.requests, "tasks": tasks})
        )
        return
    console.print(_table(st))
    console.print(_progress_line(st), markup=False)


@jobs.command("watch")
def watch_cmd(
    ctx: typer.Context,
    run_id: str | None = typer.Argument(None, metavar="RUN", help="Run id (default: the newest)."),
    interval: float = typer.Option(1.0, "--interval", min=0.1, help="Seconds between refreshes."),
    timeout: float = typer.Option(86400.0, "--timeout", help="Stop watching after this many seconds."),
) -> None:
    """Follow a run until it finishes, then report it like kb run."""
    from rich.live import Live

    from pipeline.jobs import records

    rid = _resolve(ctx, run_id)
    ws = state(ctx).workspace
    deadline = time.monotonic() + timeout
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            st = records.status(ws, rid)
            live.update(_table(st), refresh=True)
            if st.outcome in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(interval)
    if st.outcome in ("done", "failed"):
        report_run(st)


@jobs.command("retry")
def retry_cmd(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN", help="Run id."),
    stage: str | None = typer.Option(
        None, "--stage", help="transcribe | diarise | distill | finalize (default: where it failed)."
    ),
    broker: str | None = typer.Option(None, "--broker", help=BROKER_HELP),
    wait_for: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the run and report it."),
) -> None:
    """Send a run's unfinished or failed tasks again (from --stage on); the callback always reruns."""
    from pipeline.jobs import app as jobs_app
    from pipeline.jobs import records

    if stage is not None and stage not in records.STAGES:
        raise typer.BadParameter(f"unknown stage '{stage}'; stages: {', '.join(records.STAGES)}")
    st_ = state(ctx)
    settings = st_.settings(**{"workers.broker_url": broker})
    st = records.status(st_.workspace, run_id)
    ok = ("done", "skipped")
    if stage == "finalize":
        todo: list[str] = []
    elif stage is not None:
        todo = [i for i in st.interviews if st.state(stage, i) not in ok] or list(st.interviews)
    else:
        todo = [i for i in st.interviews if any(st.state(s, i) not in ok for s in records.INTERVIEW_STAGES)]
        stage = "transcribe"
    jobs_app.submit(settings, st_.workspace, force=bool(st.meta.get("force")), interviews=todo,
                    from_stage=stage, run_id=run_id, steps=st.meta.get("steps") or jobs_app.STEPS)  # fmt: skip
    console.print(f"run id: {run_id}: resent {len(todo)} interview(s) from {stage}, and the callback", markup=False)
    if wait_for:
        report_run(wait(ctx, run_id, settings, timeout=settings.workers.wait_timeout_s))
