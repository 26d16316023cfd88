"""``kb run``: the stages in order for a workspace, skipping what is fresh and saying so.

The step list and the skipping live here; the CLI parses the flags and prints each step's
summary (``on_step``). A step takes ``(settings, workspace, reporter, force=bool)`` and returns a
report whose ``str()`` is its summary. Stages never call each other: the runner hands check's
report to the site (its coverage page lists the findings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.findings import CheckReport
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace


class UnknownStepError(ValueError):
    """``--only`` / ``--skip`` named no step (the CLI shows it as a usage error, exit 2)."""


#: ``kb run`` steps, in order.
STEPS: tuple[str, ...] = ("transcribe", "distill", "check", "site", "export")


@dataclass
class RunResult:
    results: dict[str, Any] = field(default_factory=dict)  # step -> its report
    check: CheckReport | None = None

    @property
    def failed_check(self) -> bool:
        """``kb check`` found errors (``kb run`` then exits 3)."""
        return bool(self.check is not None and self.check.errors)


def _step(name: str) -> Callable[..., Any]:
    """The ``run_all`` of a step's stage, imported when it runs (``kb --help`` stays light)."""
    if name == "transcribe":
        from pipeline.stages import transcribe

        return transcribe.run_all
    if name == "distill":
        from pipeline.stages import distill

        return distill.run_all
    if name == "check":
        from pipeline.stages import check

        return check.run_all
    if name == "site":
        from pipeline.stages import site

        return site.run_all
    from pipeline.stages import export

    return export.run_all


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
    """Run the selected steps in order; ``on_step(name, report)`` after each one."""
    out = RunResult()
    for name in selected(only, skip):
        reporter.info(f"== {name}")
        extra: dict[str, Any] = {}
        if name == "site" and out.check is not None:
            extra["findings"] = out.check.findings  # the coverage page lists them
        result = _step(name)(settings, workspace, reporter, force=force, **extra)
        out.results[name] = result
        if name == "check":
            out.check = result
        if on_step is not None:
            on_step(name, result)
    return out


def check_for_site(settings: Settings, workspace: Workspace, reporter: Reporter) -> CheckReport:
    """``kb site``: check's report for the coverage page (check runs quietly; the counts are said)."""
    from pipeline.stages import check

    report = check.run(settings, workspace, Reporter(), duplicates=settings.check.duplicates)
    errors = report.errors
    reporter.info(
        f"kb check: {errors} errors, {len(report.findings) - errors} other findings (listed on the coverage page)"
    )
    return report
