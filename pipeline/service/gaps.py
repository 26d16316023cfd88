"""The service's hook into the gap log: questions answered ``uncertain``, drafts users were answered from,
and pasted logs' errors that no atom covers.

Recording never fails nor holds a request: entries go to a bounded queue that one writer thread
drains into the gap log (a DuckDB file that another serving process may hold for a moment, or a
Postgres table), so a busy or broken gap log costs the answer nothing; a full queue or a failed
write is logged and skipped. ``close`` (the app's shutdown) writes what is queued. No user identity
is recorded (no IP, no key, no header): only the redacted question, time and evidence.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("kb.serve")


class GapRecorder:
    BURST = 500  # most entries written in one gap log call

    def __init__(self, gap_log: Any, max_pending: int = 1000) -> None:
        self.log = gap_log
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=max_pending)
        self._writer: threading.Thread | None = None
        self._start = threading.Lock()

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
        with self._start:
            if self._writer is None:
                self._writer = threading.Thread(target=self._drain, name="kb-gap-writer", daemon=True)
                self._writer.start()
        try:
            self._queue.put_nowait(entries)
        except queue.Full:
            log.warning("kb serve: the gap log is behind (%d records queued); a gap was skipped", self._queue.qsize())

    def _drain(self) -> None:
        """Write each burst of queued entries in one ``record`` call (one connection, not one per
        answer: under load, a connection per uncertain answer cost the encoder a good part of a core)."""
        stop = False
        while not stop and (entries := self._queue.get()) is not None:
            burst = list(entries)
            while len(burst) < self.BURST:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                burst += more
            try:
                self.log.record(burst)
            except Exception as exc:  # the answer matters more than its gap record
                log.warning(
                    "kb serve: could not record a gap (%s)",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )

    def close(self, timeout: float = 15.0) -> None:
        """Write what is queued, then stop the writer (the app's shutdown)."""
        with self._start:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout)
