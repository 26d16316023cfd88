"""``kb import-docs``: existing Markdown documentation -> draft atoms with document sources."""

from pipeline.stages.import_docs.stage import ImportReport, run

__all__ = ["ImportReport", "run"]
