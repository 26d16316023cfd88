"""The gap log: one redaction with the ops chat, and several processes writing one file at once."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from pipeline.agent.redact import Redactor
from pipeline.config import Settings
from pipeline.index.gaps import GapLog, redact

SAMPLE = (
    "token=abc123 for bob@example.org at 10.1.2.3 and fe80::1 Bearer eyJhbGciOiJIUzI1 "
    "postgresql://kb:hunter22@db/kb ghp_abcdefghijklmnopqrstuvwx"
)


def test_gap_log_and_ops_chat_redact_the_same(tmp_path, monkeypatch):
    for name in ("KB_LLM_API_KEY", "KB_SERVE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    chat = Redactor.from_settings(Settings.load(tmp_path)).text(SAMPLE)
    assert redact(SAMPLE) == chat
    assert "hunter22" not in chat and "bob@" not in chat and "10.1.2.3" not in chat


def _writer(path: str, who: int, n: int, start) -> None:
    start.wait()
    log = GapLog(Path(path))
    for i in range(n):
        log.record([{"kind": "question", "text": f"writer {who} question {i}?"}])


def test_two_processes_write_one_gap_log_without_losing_a_record(tmp_path):
    path = tmp_path / "gaps.duckdb"
    GapLog(path).record([{"kind": "question", "text": "warm up?"}])  # the schema exists before the race
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(path), w, 25, start)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    texts = {g.text for g in GapLog(path).all()}
    assert len(texts) == 51
    assert {f"writer {w} question {i}?" for w in (1, 2) for i in range(25)} <= texts
