"""``kb distill``: transcripts -> grounded draft atoms (LLM through instructor, or extractive offline).

Flow per run: pick the backend; for each requested interview, cut the transcript into windows
and extract grounded items (LLM, cached per window) or question/answer pairs (extractive);
consolidate with the other distilled interviews and the atoms on disk; write atoms (never over
a human edit: a proposal goes beside it) or, with ``diff``, only show what would change.
Every LLM request is logged with its tokens and cost in ``.kb/runs.duckdb`` (``kb cost``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.backends.llm import RequestRecord, SharedBudget, Usage, configured, make_client
from pipeline.config import Settings
from pipeline.errors import BackendError, BudgetExceededError, KbError, NotFoundError
from pipeline.index.runlog import RunLog, append_atoms
from pipeline.models import Interview, Transcript
from pipeline.reporting import Reporter
from pipeline.stages.distill import extractive, shape
from pipeline.stages.distill import llm as dl
from pipeline.stages.distill import writer as da
from pipeline.stages.distill.windows import windows
from pipeline.transcripts import interview as interview_file
from pipeline.transcripts import store
from pipeline.workspace import RUN_LOG, Workspace, atomic_write_json, clean_leftovers, sha256_file, sha256_json

RUNLOG = RUN_LOG  # kept for callers that spell the run log as ws.state_dir / RUNLOG


@dataclass
class DistillReport:
    backend: str = ""
    interviews: int = 0
    skipped: int = 0
    windows: int = 0
    cached_windows: int = 0
    failed_windows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    proposals: int = 0
    dropped: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    outcomes: list[da.Outcome] = field(default_factory=list)
    stopped: str | None = None
    run_id: str | None = None
    stale: list[str] = field(default_factory=list)
    per_interview: dict[str, Usage] = field(default_factory=dict)
    diff: bool = False

    @property
    def diffs(self) -> list[str]:
        return [o.diff for o in self.outcomes if o.diff]

    def __str__(self) -> str:
        verb = "would write" if self.diff else "wrote"
        parts = [
            f"{self.interviews} interview(s) distilled ({self.backend})",
            f"{verb} {self.created} new, {self.updated} updated, {self.proposals} proposal(s); {self.unchanged} unchanged",
        ]
        if self.skipped:
            parts.append(f"{self.skipped} fresh, skipped")
        if self.backend == "llm":
            parts.append(f"{self.windows} window(s), {self.cached_windows} from cache")
            parts.append(str(self.usage))
        if self.failed_windows:
            parts.append(f"{self.failed_windows} window(s) failed")
        if self.dropped:
            parts.append(f"{len(self.dropped)} ungrounded item(s) dropped")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)


def choose_backend(settings: Settings, backend: str | None) -> str:
    chosen = backend or settings.distill.backend
    if chosen == "auto":
        return "llm" if configured(settings) else "extractive"
    return chosen


def load_interview(ws: Workspace, interview_id: str) -> tuple[Transcript, Interview | None]:
    path = ws.transcript_json(interview_id)
    if not path.is_file():
        raise NotFoundError(
            f"Interview '{interview_id}' has no transcript ({ws.relative(path)}).",
            f"Run 'kb transcribe {interview_id}' or 'kb add' an existing transcript first.",
        )
    transcript = store.read(path, ws.relative(path))
    interview = None
    meta = ws.interview_yaml(interview_id)
    if meta.is_file():
        try:
            interview = interview_file.load(meta, check_id=False)
        except KbError:
            interview = None  # titles fall back to the id; `kb check` reports a bad interview.yaml
    return transcript, interview


def _state_dir(ws: Workspace) -> Path:
    return ws.stage_state_dir("distill")


def _manifest_path(ws: Workspace, interview_id: str) -> Path:
    return _state_dir(ws) / "interviews" / f"{interview_id}.json"


def _inputs(ws: Workspace, interview_id: str, backend: str, settings: Settings) -> dict:
    d = settings.distill
    return {
        "transcript": sha256_file(ws.transcript_json(interview_id)),
        "backend": backend,
        "model": settings.llm.model if backend == "llm" else None,
        "prompt": dl.PROMPT if backend == "llm" else extractive.PROMPT,
        "settings": d.model_dump(exclude={"max_cost_usd", "backend"}),
    }


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    ids: list[str] | None = None,
    *,
    backend: str | None = None,
    diff: bool = False,
    force: bool = False,
    max_cost: float | None = None,
) -> DistillReport:
    """Distill ``ids`` (default: every interview with a transcript). See the module docstring."""
    ws = workspace
    clean_leftovers(ws, reporter)
    chosen = choose_backend(settings, backend)
    report = DistillReport(backend=chosen, diff=diff)
    known = [i for i in ws.interview_ids() if ws.transcript_json(i).is_file()]
    if ids:
        for i in ids:
            if not ws.transcript_json(i).is_file():
                load_interview(ws, i)  # raises NotFoundError with the fix
        requested = list(dict.fromkeys(ids))
    else:
        requested = known
        if not requested:
            reporter.info("distill: no interview has a transcript yet (kb add / kb transcribe first)")
            return report
    fresh = ws.freshness("distill")
    todo = []
    for i in requested:
        if not force and not diff and fresh.is_fresh(i, _inputs(ws, i, chosen, settings)):
            reporter.skip(f"distill {i}: transcript and settings unchanged (use --force to redo)")
            report.skipped += 1
        else:
            todo.append(i)
    if not todo:
        return report
    # interviews distilled earlier with the same backend join consolidation (from cache)
    scope = list(todo) + [i for i in known if i not in todo and _manifest_backend(ws, i) == chosen]
    max_cost = max_cost if max_cost is not None else settings.distill.max_cost_usd
    if chosen == "llm":
        drafts, done = _distill_llm(settings, ws, reporter, todo, scope, report, max_cost)
    else:
        drafts, done = _distill_extractive(settings, ws, reporter, scope, report), list(todo)
    report.interviews = len(done)

    existing = da.load_existing(ws, reporter)
    if chosen == "llm":
        drafts = da.merge(drafts, settings.distill.merge_threshold)
    planned = da.plan_ids(drafts, existing, ws, settings.distill.merge_threshold)
    da.resolve_related(planned, existing)
    report.outcomes = da.write_all(planned, existing, ws, diff=diff)
    report.stale = da.stale(existing, {p.atom_id for p in planned}, chosen, set(done))
    for atom_id in report.stale:
        reporter.warn(
            f"{ws.relative(existing.paths[atom_id])}: no longer distilled from its interview(s); "
            "kb keeps it: delete it or keep it as you see fit"
        )
    for o in report.outcomes:
        if o.action == "created":
            report.created += 1
        elif o.action == "updated":
            report.updated += 1
        elif o.action == "proposed":
            report.proposals += 1
            edited = ws.relative(o.path).replace(".proposed.md", ".md")
            reporter.warn(f"{edited}: edited by a person, kept as it is; kb's new version is {ws.relative(o.path)}")
        else:
            report.unchanged += 1
    if not diff:
        for i in done:
            fresh.record(i, _inputs(ws, i, chosen, settings))
            if chosen == "extractive":
                atomic_write_json(_manifest_path(ws, i), {"backend": chosen, "windows": []})
        _log_atoms(ws, report, planned)
    for msg in report.dropped:
        reporter.warn(f"dropped (not grounded): {msg}")
    return report


def _manifest_backend(ws: Workspace, interview_id: str) -> str | None:
    path = _manifest_path(ws, interview_id)
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("backend")
    except (OSError, ValueError):
        return None


def _load_with_expert(
    ws: Workspace, interview_id: str, reporter: Reporter
) -> tuple[Transcript, Interview | None] | None:
    """``load_interview``, or None (said) when no speaker is an expert: only experts' words become atoms."""
    transcript, interview = load_interview(ws, interview_id)
    if not any(sp.role == "expert" for sp in transcript.speakers):
        reporter.warn(f"distill {interview_id}: no speaker is marked as expert; map speakers in interview.yaml first")
        return None
    return transcript, interview


def _distill_extractive(
    settings: Settings, ws: Workspace, reporter: Reporter, scope: list[str], report: DistillReport
) -> list[da.Draft]:
    drafts: list[da.Draft] = []
    titles: set[str] = set()
    for i in scope:
        loaded = _load_with_expert(ws, i, reporter)
        if loaded is None:
            continue
        transcript, interview = loaded
        for d in shape.drafts(transcript, interview, settings, reporter):
            if d.title.lower() in titles:
                d.title = f"{d.title} ({interview.title if interview else i})"
            titles.add(d.title.lower())
            drafts.append(d)
    return drafts


def _distill_llm(
    settings: Settings,
    ws: Workspace,
    reporter: Reporter,
    todo: list[str],
    scope: list[str],
    report: DistillReport,
    max_cost: float | None,
) -> tuple[list[da.Draft], list[str]]:
    client = make_client(settings, budget_usd=max_cost)
    drafts: list[da.Draft] = []
    done: list[str] = []
    where: dict[str, Any] = {"interview": None, "window": None}
    log = RunLog(ws.run_log, backend="llm", model=settings.llm.model, prompt=dl.PROMPT)
    report.run_id = log.run_id

    def on_request(r: RequestRecord) -> None:
        interview = str(where["interview"])
        log.request(interview, where["window"], r.tokens_in, r.tokens_out, r.cost_usd, reask=r.reask, retries=r.retries)
        report.per_interview.setdefault(interview, Usage()).add(
            Usage(1, r.retries, int(r.reask), r.tokens_in, r.tokens_out, r.cost_usd)
        )

    client.on_request = on_request
    status = "ok"
    try:
        for i in scope:
            got = _llm_interview(client, settings, ws, reporter, report, where, i, i in todo)
            if got is None:
                continue
            found, keys, finished = got
            drafts += found
            if finished:
                done.append(i)
                atomic_write_json(_manifest_path(ws, i), {"backend": "llm", "windows": keys})
    except BudgetExceededError as exc:
        status = "budget"
        report.stopped = exc.message
        # keep only interviews whose windows all finished; the rest resume from the cache
        drafts = [d for d in drafts if set(d.interviews) <= set(done) | (set(scope) - set(todo))]
    except BaseException:
        status = "interrupted"
        raise
    finally:
        report.usage = client.total
        client.on_request = None
        client.close()
        try:
            log.finish(
                status if report.failed_windows == 0 or status != "ok" else "partial",
                strict=status != "interrupted",  # a full disk under the log fails the run, unless it is failing
                interviews=len(done),
                windows=report.windows,
                cached_windows=report.cached_windows,
                dropped_items=len(report.dropped),
            )
        finally:
            log.close()
    return drafts, done


def _llm_interview(
    client: Any,
    settings: Settings,
    ws: Workspace,
    reporter: Reporter,
    report: DistillReport,
    where: dict[str, Any],
    i: str,
    requested: bool,
) -> tuple[list[da.Draft], list[str], bool] | None:
    """One interview's windows: (drafts, window cache keys, finished); None when it cannot be read.

    An interview not ``requested`` is only consolidated: its cached windows are used, never paid for.
    """
    loaded = _load_with_expert(ws, i, reporter)
    if loaded is None:
        return None
    transcript, interview = loaded
    cache_dir = _state_dir(ws) / "windows"
    ws_list = windows(transcript, dl.window_budget(settings), settings.distill.window_overlap_turns)
    drafts: list[da.Draft] = []
    keys: list[str] = []
    failed = False
    for w in reporter.progress(ws_list, f"distill {i}", total=len(ws_list)):
        where.update(interview=i, window=w.index)
        key = dl.cache_key(w, settings)
        keys.append(key)
        if not requested:  # consolidation only: never pay for interviews not asked for
            res = dl.load_cached(cache_dir, key, transcript)
            if res is None:
                continue
        else:
            report.windows += 1
            try:
                res = dl.extract_window(client, w, transcript, interview, settings, cache_dir)
            except BudgetExceededError:
                raise
            except BackendError as exc:
                failed = True
                report.failed_windows += 1
                reporter.warn(f"distill {i}: window {w.index + 1}/{len(ws_list)} failed: {exc.message}")
                continue
            if res.cached:
                report.cached_windows += 1
            report.dropped += [f"{i} window {w.index + 1}: {d}" for d in res.dropped]
        share = dl.split_usage(res.usage, len(res.items))
        drafts += [dl.to_draft(item, i, settings, share) for item in res.items]
    return drafts, keys, requested and not failed


def _log_atoms(ws: Workspace, report: DistillReport, planned: list[da.Planned]) -> None:
    if report.run_id is None:
        return
    path = ws.run_log
    by_id = {p.atom_id: p for p in planned}
    rows = []
    for o in report.outcomes:
        p = by_id.get(o.atom_id)
        if p is None:
            continue
        d = p.draft
        rows.append((o.atom_id, o.atom_type, d.interviews, o.action, d.tokens_in, d.tokens_out, d.cost_usd))
    append_atoms(path, report.run_id, rows, written=report.created + report.updated, proposals=report.proposals)


def run_all(settings: Settings, workspace: Workspace, reporter: Reporter, force: bool = False) -> DistillReport:
    """``kb run`` step: distill every interview with a transcript whose inputs changed."""
    return run(settings, workspace, reporter, force=force)


def settings_hash(settings: Settings) -> str:
    """What distillation depends on besides the transcript (backend, model, prompt, settings): names worker tasks."""
    backend = choose_backend(settings, None)
    return sha256_json(
        {
            "backend": backend,
            "model": settings.llm.model if backend == "llm" else None,
            "prompt": dl.PROMPT if backend == "llm" else extractive.PROMPT,
            "settings": settings.distill.model_dump(exclude={"max_cost_usd", "backend"}),
        }
    )


def prefetch(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    interview_id: str,
    *,
    force: bool = False,
    on_request: Callable[[str, int | None, RequestRecord], None] | None = None,
    shared_budget: Callable[[Callable[[], int | None]], SharedBudget] | None = None,
) -> DistillReport:
    """A worker's share of distillation: one interview's LLM windows into the window cache.

    Consolidation and writing stay in the one ``run_all`` that follows (it then finds every window
    cached), so the atoms are a local run's. Nothing to do for the extractive backend or a fresh
    interview. ``on_request(interview, window, record)`` sees every completion (the cost ledger);
    ``shared_budget(window)`` makes the budget ``distill.max_cost_usd`` shared by all of a run's
    tasks (``window()`` says which window a request is for) instead of this task's own.
    """
    ws = workspace
    chosen = choose_backend(settings, None)
    report = DistillReport(backend=chosen)
    if chosen != "llm":
        return report
    if not force and ws.freshness("distill").is_fresh(interview_id, _inputs(ws, interview_id, chosen, settings)):
        reporter.skip(f"distill {interview_id}: transcript and settings unchanged (use --force to redo)")
        report.skipped = 1
        return report
    shared = shared_budget is not None and settings.distill.max_cost_usd is not None
    client = make_client(settings, budget_usd=None if shared else settings.distill.max_cost_usd)
    where: dict[str, Any] = {"interview": interview_id, "window": None}
    if shared and shared_budget is not None:
        client.shared_budget = shared_budget(lambda: where["window"])
    if on_request is not None:
        client.on_request = lambda r: on_request(interview_id, where["window"], r)
    try:
        got = _llm_interview(client, settings, ws, reporter, report, where, interview_id, True)
    finally:
        report.usage = client.total
        client.on_request = None
        client.close()
    report.interviews = 1 if got is not None and got[2] else 0
    return report
