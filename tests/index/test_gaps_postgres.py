"""The gap log in the Postgres index (issue 15 item 6): written where kb serves from, read by ``kb gaps``."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("psycopg", reason="needs kb-atoms[postgres]")

from pipeline.config import Settings  # noqa: E402
from pipeline.index.gaps import GapLog
from pipeline.index.gaps_pg import PostgresGapLog  # noqa: E402
from pipeline.index.gapstore import open_gap_log  # noqa: E402


def test_gaps_go_to_the_postgres_index_and_kb_gaps_reads_them(pg_url, tmp_path, kb, monkeypatch):
    ws = tmp_path / "ws"
    assert kb("init", ws).exit_code == 0
    assert isinstance(open_gap_log(ws / ".kb", Settings.load(ws)), GapLog)  # no index: the DuckDB file
    monkeypatch.setenv("KB_INDEX_URL", pg_url)
    log = open_gap_log(ws / ".kb", Settings.load(ws))
    assert isinstance(log, PostgresGapLog) and log.schema == "kb"
    import psycopg

    with psycopg.connect(pg_url) as con:  # this session's other tests share the schema
        con.execute("DROP TABLE IF EXISTS kb.gaps")
    q = "How do I rotate the ingress TLS certificates? mail ops@example.org, password=hunter22"
    assert log.record([{"kind": "question", "text": q, "evidence": 0.2}]) == 1
    log.record([{"kind": "question", "text": q}])
    out = kb("-w", ws, "gaps", "--json")
    assert out.exit_code == 0, out.stderr
    (item,) = [g for g in json.loads(out.stdout)["gaps"] if g["kind"] == "question"]
    text = json.dumps(item)
    assert "rotate the ingress TLS" in text and "hunter22" not in text and "ops@example.org" not in text
    assert "[REDACTED:email]" in text
    (gap,) = log.all()
    assert gap.count == 2 and gap.evidence == 0.2 and not (ws / ".kb" / "gaps.duckdb").exists()
    assert log.close([gap.key], "bundle-2") == 1
    assert log.all("open") == [] and log.all("closed")[0].closed_by == "bundle-2"


def test_postgres_gap_log_is_bounded_like_the_file(pg_url):
    log = PostgresGapLog(pg_url, schema="kb_gaps_bound", max_rows=3)
    for i in range(5):
        log.record([{"kind": "question", "text": f"question number {i}?"}])
    assert [g.text for g in log.all()] == ["question number 4?", "question number 3?", "question number 2?"]
    (old,) = [g for g in log.all() if g.text == "question number 4?"]
    log.close([old.key], "b")
    log.record([{"kind": "question", "text": "question number 5?"}])  # the closed gap goes first
    assert sorted(g.text for g in log.all()) == ["question number 2?", "question number 3?", "question number 5?"]
