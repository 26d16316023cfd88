"""``kb distill``: transcript -> grounded draft atoms (windows, LLM or extractive, consolidation, writing)."""

from pipeline.stages.distill.stage import RUNLOG, DistillReport, choose_backend, run, run_all

__all__ = ["RUNLOG", "DistillReport", "choose_backend", "run", "run_all"]
