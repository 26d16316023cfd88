"""The service's hook into the gap log: questions answered ``uncertain``, drafts users were answered from,
and pasted logs' errors that no atom covers.

Recording never fails a request: a gap log that is busy or broken is logged and skipped. No user
identity is recorded (no IP, no key, no header): only the redacted question, time and evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("kb.serve")


class GapRecorder:
    def __init__(self, gap_log: Any) -> None:
        self.log = gap_log

    def note(self, question: str, result: Any, status_of: Callable[[str], str | None]) -> None:
        entries: list[dict[str, Any]] = []
        if result.uncertain:
            entries.append({"kind": "question", "text": question, "evidence": result.evidence, "detail": result.reason})
        for c in result.citations or []:
            atom_id = c.get("atom_id") if isinstance(c, dict) else None
            if atom_id and status_of(atom_id) == "draft":
                entries.append(
                    {"kind": "asked-draft", "text": question, "atom_id": atom_id, "evidence": result.evidence}
                )
        self._record(entries)

    def note_uncovered(self, result: Any) -> None:
        """A triage's error groups that no atom covers (``POST /v1/triage``)."""
        from pipeline.ops import gap_questions

        self._record(gap_questions(result))

    def _record(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        try:
            self.log.record(entries)
        except Exception as exc:  # the answer matters more than its gap record
            log.warning(
                "kb serve: could not record a gap (%s)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            )
