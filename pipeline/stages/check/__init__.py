"""``kb check``: every problem in the atoms, with file, line, rule and the fix (one module per rule family)."""

from pipeline.findings import RULES, CheckReport, Finding
from pipeline.stages.check.stage import run, run_all

__all__ = ["RULES", "CheckReport", "Finding", "run", "run_all"]
