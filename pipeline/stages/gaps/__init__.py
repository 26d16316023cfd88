"""``kb gaps``: what the knowledge base is missing, ranked, and the next interview's question guide.

Sources of gaps: the questions ``kb serve`` answered ``uncertain`` and the errors ``kb triage``
found uncovered (both in ``.kb/gaps.duckdb``, see ``pipeline.index.gaps``), the atoms users were
answered from that are still drafts, and the empty cells of the type x topic coverage. A question
gap is closed when, asked again against a newer bundle, it is answered certain (``close``).
"""

from __future__ import annotations

from pipeline.stages.gaps.guide import write_guide
from pipeline.stages.gaps.rank import GapsReport, Ranked, close, close_with_newest_bundle, report

run = report

__all__ = ["GapsReport", "Ranked", "close", "close_with_newest_bundle", "report", "run", "write_guide"]
