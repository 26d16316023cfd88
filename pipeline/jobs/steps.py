"""The pipeline's step table, shared by ``kb run`` (pipeline.runner) and the Celery tasks.

It sits here, below the runner, so a worker runs the very functions a local ``kb run`` runs (no
second copy of the pipeline): ``step(name)`` is a stage's ``run_all``, ``run_steps`` runs a list
of them in order and hands check's report to the site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.findings import CheckReport
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace

#: ``kb run`` steps, in order.
STEPS: tuple[str, ...] = ("transcribe", "distill", "check", "site", "export")


@dataclass
class RunResult:
    results: dict[str, Any] = field(default_factory=dict)  # step -> its report
    check: CheckReport | None = None
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (step, interview, why)

    @property
    def failed_check(self) -> bool:
        """``kb check`` found errors (``kb run`` then exits 3)."""
        return bool(self.check is not None and self.check.errors)


def step(name: str) -> Callable[..., Any]:
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


def run_steps(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    names: Sequence[str],
    *,
    force: bool = False,
    on_step: Callable[[str, Any], None] | None = None,
) -> RunResult:
    """Run ``names`` in order; ``on_step(name, report)`` after each one."""
    out = RunResult()
    for name in names:
        reporter.info(f"== {name}")
        extra: dict[str, Any] = {}
        if name == "site" and out.check is not None:
            extra["findings"] = out.check.findings  # the coverage page lists them
        result = step(name)(settings, workspace, reporter, force=force, **extra)
        out.results[name] = result
        # a step that failed for some interviews went on with the others (kb run lists these at the end)
        out.failures += [(name, iid, why) for iid, why in sorted((getattr(result, "failed", None) or {}).items())]
        if name == "check":
            out.check = result
        if on_step is not None:
            on_step(name, result)
    return out
