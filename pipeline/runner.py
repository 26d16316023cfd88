"""``kb run``: the stages in order for a workspace, skipping what is fresh and saying so.

The step list and the skipping live here; the CLI parses the flags and prints each step's
summary (``on_step``). The step table itself is ``pipeline.jobs.steps`` (the
Celery workers run the same functions). A step takes ``(settings, workspace, reporter, force=bool)`` and returns a
report whose ``str()`` is its summary. Stages never call each other: the runner hands check's
report to the site (its coverage page lists the findings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline.config import Settings
from pipeline.findings import CheckReport
from pipeline.jobs.steps import STEPS, RunResult, run_steps
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace


class UnknownStepError(ValueError):
    """``--only`` / ``--skip`` named no step (the CLI shows it as a usage error, exit 2)."""


def selected(only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[str]:
    """The steps ``--only`` / ``--skip`` leave, in order; an unknown name is an UnknownStepError."""
    for name in [*only, *skip]:
        if name not in STEPS:
            raise UnknownStepError(f"unknown step '{name}'; steps: {', '.join(STEPS)}")
    return [name for name in STEPS if not ((only and name not in only) or name in skip)]


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    *,
    force: bool = False,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    on_step: Callable[[str, Any], None] | None = None,
) -> RunResult:
    """Run the selected steps in order in this process; ``on_step(name, report)`` after each one."""
    return run_steps(settings, workspace, reporter, selected(only, skip), force=force, on_step=on_step)


def check_for_site(settings: Settings, workspace: Workspace, reporter: Reporter) -> CheckReport:
    """``kb site``: check's report for the coverage page (check runs quietly; the counts are said)."""
    from pipeline.stages import check

    report = check.run(settings, workspace, Reporter(), duplicates=settings.check.duplicates)
    errors = report.errors
    reporter.info(
        f"kb check: {errors} errors, {len(report.findings) - errors} other findings (listed on the coverage page)"
    )
    return report


__all__ = ["STEPS", "RunResult", "UnknownStepError", "check_for_site", "run", "selected"]
