"""``kb distill``: transcript -> grounded draft atoms (windows, LLM or extractive, consolidation, writing)."""

from pipeline.stages.distill.stage import RUNLOG, DistillReport, choose_backend, prefetch, run, run_all, settings_hash

__all__ = ["RUNLOG", "DistillReport", "choose_backend", "prefetch", "run", "run_all", "settings_hash"]
