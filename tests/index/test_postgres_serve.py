"""``kb serve --index postgresql://…`` and ``kb eval --index …`` on a real Postgres + pgvector.

Export -> two ``kb serve`` processes on one database (real HTTP on 127.0.0.1) -> ``kb eval
--index`` recall@5 on the FAQ questions at least the bundle's; a re-export reaches both servers
(one by POST /admin/reload, the other by --watch on the index's checksum); a password in the
flag is refused without echoing it; an embedder of another model is refused.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("psycopg", reason="needs kb-atoms[postgres]")
pytest.importorskip("pgvector", reason="needs kb-atoms[postgres]")
httpx = pytest.importorskip("httpx")

from tests.serve_support import kb_serve, wait_for  # noqa: E402
from tests.service.test_service import (  # noqa: E402
    OFF_TOPIC,
    REAL_ATOM,
    REAL_QUESTION,
    export_bundle,
    free_port,
    make_workspace,
)

SCHEMA = "serve_test"


def _url(pg_url: str) -> str:
    return pg_url.replace(":@", "@", 1)  # pgserver's URI has an empty password: none at all


def _eval(kb, ws, *target: str) -> dict:
    r = kb("--workspace", ws, "eval", *target, "--k", "5", "--holdout", "--format", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_export_serve_twice_eval_and_reload(pg_url, kb, tmp_path, monkeypatch):
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings
    from pipeline.index.bundle import read_manifest

    url = _url(pg_url)
    monkeypatch.setenv("KB_INDEX_SCHEMA_NAME", SCHEMA)
    ws = make_workspace(tmp_path / "ws")
    embedder = load_embedder(Settings.load(ws))
    first = export_bundle(ws, ws / "dist" / "kb-1.duckdb", embedder=embedder)
    r = kb("--workspace", ws, "export", "--to", url, "--bundle", first, "--replace")
    assert r.exit_code == 0, r.stdout + r.stderr

    on_pg, on_file = _eval(kb, ws, "--index", url), _eval(kb, ws, "--bundle", first)
    assert on_pg["questions"] == on_file["questions"] > 0
    assert on_pg["recall"]["@5"] >= on_file["recall"]["@5"], (on_pg["recall"], on_file["recall"])
    assert "postgres" not in on_file["bundle"] and on_pg["bundle"].endswith(f"#{SCHEMA}")

    env = {"KB_INDEX_SCHEMA_NAME": SCHEMA}
    args = ("--workspace", ws, "serve", "--index", url)
    with kb_serve(*args, port=free_port(), env=env) as a, kb_serve(*args, "--watch", port=free_port(), env=env) as b:
        checksum = read_manifest(first).checksum
        for base in (a, b):
            health = httpx.get(base + "/healthz").json()
            assert health["index"] == {"kind": "postgres", "checksum": checksum}
            answer = httpx.post(base + "/v1/ask", json={"question": REAL_QUESTION}, timeout=60).json()
            assert answer["citations"][0]["atom_id"] == REAL_ATOM
            assert httpx.post(base + "/v1/ask", json={"question": OFF_TOPIC}, timeout=60).json()["uncertain"]
        from pipeline.index.gaps_pg import PostgresGapLog

        gaps = PostgresGapLog(url, schema=SCHEMA)  # both servers record into one gap table in the index's schema
        wait_for(lambda: any(g.text == OFF_TOPIC and g.count == 2 for g in gaps.all()), what="both servers' gaps")
        assert not (ws / ".kb" / "gaps.duckdb").exists()
        victim = sorted((ws / "atoms").rglob("*.md"))[-1]
        victim.unlink()
        second = export_bundle(ws, ws / "dist" / "kb-2.duckdb", embedder=embedder)
        assert kb("--workspace", ws, "export", "--to", url, "--bundle", second).exit_code == 0
        new = read_manifest(second).checksum
        assert httpx.post(a + "/admin/reload", timeout=60).json()["bundle"]["checksum"] == new
        wait_for(lambda: httpx.get(b + "/healthz").json()["index"]["checksum"] == new, what="--watch to see the export")
        gone = httpx.get(a + f"/v1/atoms/{victim.stem}")
        assert gone.status_code == 404


def test_a_password_in_the_flag_is_refused_without_echoing_it(kb, tmp_path):
    ws = make_workspace(tmp_path / "ws")
    for command in ("serve", "eval"):
        r = kb("--workspace", ws, command, "--index", "postgresql://kb:hunter2@127.0.0.1:1/kb")
        assert r.exit_code == 1, r.stdout + r.stderr
        assert "PGPASSWORD" in r.stderr and "KB_INDEX_URL" in r.stderr and "hunter2" not in r.stdout + r.stderr


def test_an_embedder_of_another_model_is_refused(pg_url, tmp_path):
    from pipeline.errors import BundleError
    from pipeline.index import postgres
    from pipeline.index.bundle import read_bundle

    ws = make_workspace(tmp_path / "ws")
    path = export_bundle(ws, tmp_path / "kb-x.duckdb")
    manifest, content = read_bundle(path)
    postgres.upsert_bundle(_url(pg_url), content, manifest, schema="mismatch_test")

    class Other:
        model_id, dim = "another-model", 3

    with pytest.raises(BundleError, match="another-model") as info:
        postgres.PostgresIndex.load(_url(pg_url), Other(), schema="mismatch_test")
    assert "embed.model" in info.value.hint
