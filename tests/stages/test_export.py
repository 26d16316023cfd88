"""kb export: a real DuckDB bundle, its manifest and checksum, incremental re-export, statuses."""

from __future__ import annotations

import json
import re
import shutil

import duckdb
import numpy as np
import pytest
from bundle_support import ATOMS, atom_text, embedder, export, make_workspace

from pipeline.errors import BundleError, ConfigError, InputError
from pipeline.index.bundle import Bundle, read_manifest
from pipeline.stages.export import sidecar


@pytest.fixture
def ws(tmp_path):
    return make_workspace(tmp_path / "ws")


def test_round_trip(ws):
    report = export(ws)
    path = report.path
    assert re.fullmatch(r"kb-\d{8}-[0-9a-f]{8}\.duckdb", path.name) and path.parent == ws.dist_dir
    assert [p.name for p in ws.dist_dir.iterdir() if p.name.startswith(".")] == []  # no temp files left
    b = Bundle.load(path, embedder=embedder())
    # archived atoms are never exported
    assert sorted(b.atom_ids) == [
        "argocd-sync-context-deadline-exceeded",
        "never-force-push-to-main",
        "rotate-the-postgres-password",
    ]
    m = b.manifest
    assert m.counts == {"atoms": 3, "faq": 4, "sources": 2, "passages": report.passages}
    assert m.embedding.model == "all-MiniLM-L6-v2" and m.embedding.dim == 384 and m.embedding.normalized
    assert m.statuses == ["draft", "in-review", "validated"] and m.bundle_schema_version == 1
    assert path.name == f"kb-{m.created:%Y%m%d}-{m.checksum[:8]}.duckdb"
    # the sidecar is the same manifest
    assert json.loads(sidecar(path).read_text()) == json.loads(m.model_dump_json())
    assert read_manifest(path) == m

    atom = b.atom("argocd-sync-context-deadline-exceeded")
    assert atom["title"] == "Sync fails with 'context deadline exceeded'" and atom["status"] == "validated"
    assert atom["tags"] == ["argocd", "sync", "timeouts"] and atom["reviewed_by"] == ["Dana Reviewer"]
    assert "## How to resolve" in atom["body"] and atom["meta"]["type"] == "error"
    assert atom["sources"] == [
        {
            "interview": "2026-03-04-alice",
            "speaker": "Alice Moreau",
            "start": 754.2,
            "end": 781.0,
            "quote": "when you see deadline exceeded it is almost always the repo server",
        }
    ]
    assert b.faq_pairs("rotate-the-postgres-password") == [
        {
            "question": "Do I need downtime to rotate the database password?",
            "answer": "No, pgbouncer reconnects with the new secret after a rolling restart.",
        }
    ]
    assert atom["faq"][0]["question"] == "Why does the sync hang for exactly 60 seconds?"
    assert b.atom("old-ldap-tip") is None and b.atom("nope") is None

    # passages: title, one per section, one per FAQ pair
    kinds = [(p["kind"], p["heading"]) for p in b.passages("argocd-sync-context-deadline-exceeded")]
    assert kinds == [
        ("title", "Sync fails with 'context deadline exceeded'"),
        ("section", "What it means"),
        ("section", "Common causes"),
        ("section", "How to resolve"),
        ("faq", "Why does the sync hang for exactly 60 seconds?"),
        ("faq", "Which component should I look at first?"),
    ]

    # the vectors in the file are the model's vectors of the passages' search text
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT search_text, embedding FROM passages ORDER BY id").fetchall()
        cos = con.execute(
            "SELECT max(array_inner_product(embedding, embedding)) - min(array_inner_product(embedding, embedding)) FROM passages"
        ).fetchone()[0]
    again = embedder().encode([rows[0][0], rows[-1][0]])
    assert np.allclose(again, np.array([rows[0][1], rows[-1][1]], dtype=np.float32), atol=1e-5)
    assert abs(cos) < 1e-4  # unit vectors: SQL clients can use array_inner_product as cosine

    hits = b.search("the repo server times out while rendering manifests", k=2)
    assert hits[0].atom_id == "argocd-sync-context-deadline-exceeded"
    assert hits[0].sources[0]["interview"] == "2026-03-04-alice"


def test_status_filter_for_production(ws, tmp_path):
    report = export(ws, out=tmp_path / "prod.duckdb", statuses=["validated"])
    b = Bundle.load(report.path, embedder=embedder())
    assert b.atom_ids == ["argocd-sync-context-deadline-exceeded"] and b.manifest.statuses == ["validated"]
    assert report.excluded == 2 and report.archived == 1
    with pytest.raises(ConfigError, match="never exported"):
        export(ws, out=tmp_path / "x.duckdb", statuses=["archived"])
    with pytest.raises(ConfigError, match="Unknown status 'publshed'"):
        export(ws, out=tmp_path / "x.duckdb", statuses=["validated,publshed"])


def _tampered(src, tmp_path, sql):
    bad = tmp_path / "tampered.duckdb"
    shutil.copy(src, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute(sql)
    return bad


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE atoms SET title = 'Sync is fine' WHERE id = 'argocd-sync-context-deadline-exceeded'",
        "UPDATE faq SET answer = 'Restart everything.' WHERE ord = 0",
        'UPDATE sources SET source = \'{"document": "forged.md", "heading": "x"}\'',
        "UPDATE passages SET embedding = [0.0 for x in range(384)]::FLOAT[384] WHERE id = 1",
        "DELETE FROM passages WHERE id = (SELECT max(id) FROM passages)",
    ],
    ids=["atom-title", "faq-answer", "source", "vector", "deleted-passage"],
)
def test_tampered_bundle_is_refused(ws, tmp_path, sql):
    good = export(ws).path
    bad = _tampered(good, tmp_path, sql)
    with pytest.raises(BundleError, match="fails its checksum") as info:
        Bundle.load(bad, embedder=embedder())
    assert "kb export" in info.value.hint
    Bundle.load(good, embedder=embedder())  # the original still loads


def test_schema_version_and_broken_files_are_refused(ws, tmp_path):
    good = export(ws).path
    m = read_manifest(good)
    newer = m.model_copy(update={"bundle_schema_version": 99}).model_dump_json().replace("'", "''")
    bad = _tampered(good, tmp_path, f"UPDATE manifest SET json = '{newer}'")
    with pytest.raises(BundleError, match="uses bundle schema 99; this kb reads schema 1"):
        Bundle.load(bad, embedder=embedder())
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BundleError, match="not a readable kb bundle"):
        Bundle.load(junk, embedder=embedder())
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.load(tmp_path / "missing.duckdb", embedder=embedder())
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(BundleError, match="no bundle manifest"):
        Bundle.load(other, embedder=embedder())


def test_embedding_model_must_match(ws, tmp_path):
    """A bundle made with one model is refused by an embedder of another (a real local model dir)."""
    from pipeline.backends.embed import load_embedder, resolve_model
    from pipeline.config import Settings

    good = export(ws).path
    src = resolve_model("all-MiniLM-L6-v2").location
    copy = tmp_path / "minilm-copy"
    shutil.copytree(src, copy, copy_function=lambda s, d: __import__("os").symlink(s, d))
    other = load_embedder(Settings.load(None, **{"embed.model": str(copy)}))
    assert other.model_id == "minilm-copy"
    with pytest.raises(BundleError, match="embedded with 'all-MiniLM-L6-v2'") as info:
        Bundle.load(good, embedder=other)
    assert "embed.model" in info.value.hint


def test_reexport_embeds_only_changed_passages(ws, tmp_path):
    e = embedder()
    first = export(ws, out=tmp_path / "a.duckdb")
    assert first.embedded == first.passages and first.cached == 0

    before = e.texts_encoded
    same = export(ws, out=tmp_path / "b.duckdb", force=True)
    assert e.texts_encoded == before and same.embedded == 0 and same.cached == same.passages
    assert read_manifest(same.path).checksum == read_manifest(first.path).checksum

    # a reviewer edits one section of one atom and adds a FAQ pair
    path = ws.atoms_dir / "pitfall" / "never-force-push-to-main.md"
    text = path.read_text()
    text = text.replace(
        "Revert the bad commit with git revert and push normally.", "Open a revert pull request instead."
    )
    text += "**Q:** Can admins force-push?\n**A:** No, branch protection applies to admins too.\n"
    path.write_text(text)
    before = e.texts_encoded
    third = export(ws, out=tmp_path / "c.duckdb")
    assert e.texts_encoded - before == 2 and third.embedded == 2
    assert third.cached == third.passages - 2 and third.passages == first.passages + 1
    b = Bundle.load(third.path, embedder=e)
    assert b.search("open a revert pull request", k=1)[0].atom_id == "never-force-push-to-main"


def test_kb_export_cli_and_freshness(kb, ws, monkeypatch):
    monkeypatch.chdir(ws.root)
    r = kb("export")
    assert r.exit_code == 0, r.stderr
    assert re.search(
        r"export: 3 atoms, \d+ passages \(\d+ embedded, 0 from cache\) -> .*kb-\d{8}-[0-9a-f]{8}\.duckdb", r.stdout
    )
    r = kb("export")
    assert r.exit_code == 0 and "atoms unchanged" in r.stderr and "is fresh" in r.stdout
    r = kb("export", "--status", "archived")
    assert r.exit_code == 1 and "Error: Archived atoms are never exported." in r.stderr


def test_broken_atom_stops_the_export_with_file_and_line(ws, tmp_path):
    (ws.atoms_dir / "error" / "broken.md").write_text("---\nid: broken\ntitle: [unclosed\n---\nBody\n")
    with pytest.raises(InputError, match=r"atoms/error/broken\.md:\d+") as info:
        export(ws, out=tmp_path / "x.duckdb")
    assert "kb check" in info.value.hint
    assert not (tmp_path / "x.duckdb").exists() and list(tmp_path.glob(".x.duckdb*")) == []


def test_duplicate_ids_are_refused(ws, tmp_path):
    text = ATOMS["pitfall/never-force-push-to-main.md"]
    (ws.atoms_dir / "error").mkdir(exist_ok=True)
    (ws.atoms_dir / "error" / "never-force-push-to-main.md").write_text(text.replace("type: pitfall", "type: error"))
    with pytest.raises(InputError, match="used twice"):
        export(ws, out=tmp_path / "x.duckdb")


def test_long_sections_are_split_to_fit_the_model(ws, tmp_path):
    e = embedder()
    paragraphs = [
        " ".join(
            f"Paragraph {p} sentence {s} explains how the ingress controller retries upstream requests."
            for s in range(8)
        )
        for p in range(6)
    ]
    long_atom = atom_text(
        "ingress-retries",
        "How ingress retries work",
        "troubleshooting-tip",
        {"Symptom": "\n\n".join(paragraphs), "Tip": "Lower proxy-next-upstream-tries."},
        [("Why are requests retried?", "Because the upstream timed out.")],
    )
    (ws.atoms_dir / "troubleshooting-tip").mkdir(exist_ok=True)
    (ws.atoms_dir / "troubleshooting-tip" / "ingress-retries.md").write_text(long_atom)
    b = Bundle.load(export(ws, out=tmp_path / "x.duckdb").path, embedder=e)
    symptom = [p for p in b.passages("ingress-retries") if p["heading"] == "Symptom"]
    assert len(symptom) > 1 and [p["part"] for p in symptom] == list(range(1, len(symptom) + 1))
    with duckdb.connect(str(b.path), read_only=True) as con:
        texts = [
            r[0] for r in con.execute("SELECT search_text FROM passages WHERE atom_id = 'ingress-retries'").fetchall()
        ]
    assert max(e.count_tokens(t) for t in texts) <= e.max_tokens
    joined = " ".join(p["text"] for p in symptom)
    assert all(para.split(" Paragraph")[0][:40] in joined for para in paragraphs)  # nothing lost


def test_kb_run_exports_and_then_skips(kb, ws, monkeypatch):
    monkeypatch.chdir(ws.root)
    r = kb("run", "--only", "export")
    assert r.exit_code == 0, r.stderr
    assert re.search(r"export: 3 atoms, \d+ passages", r.stdout)
    bundles = list(ws.dist_dir.glob("kb-*.duckdb"))
    assert len(bundles) == 1 and (ws.dist_dir / bundles[0].name.replace(".duckdb", ".manifest.json")).is_file()
    r = kb("run", "--only", "export")
    assert r.exit_code == 0 and "skip: export: atoms unchanged" in r.stderr


def test_a_second_export_at_the_same_time_is_told_to_wait(ws, tmp_path):
    """Another process holding the embedding cache (a concurrent kb export) -> ConflictError, no traceback."""
    import subprocess
    import sys

    from pipeline.errors import ConflictError

    cache = ws.state_dir / "embeddings" / "all-MiniLM-L6-v2-384.duckdb"
    cache.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(cache)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ConflictError, match="embedding cache .* is in use") as info:
            export(ws, out=tmp_path / "x.duckdb")
        assert "Another 'kb export' is running" in info.value.hint
        assert not (tmp_path / "x.duckdb").exists()
    finally:
        holder.kill()
        holder.wait()
    assert export(ws, out=tmp_path / "x.duckdb").path.is_file()


def test_manifest_records_the_git_commit(kb, ws, tmp_path, monkeypatch):
    import subprocess

    git = ["git", "-C", str(ws.root), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "atoms"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "atoms"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(ws.root)
    r = kb("export", "--status", "validated", "--status", "in-review", "--out", tmp_path / "prod.duckdb")
    assert r.exit_code == 0, r.stderr
    m = read_manifest(tmp_path / "prod.duckdb")
    assert m.git_commit == head and m.statuses == ["in-review", "validated"] and m.counts["atoms"] == 2
    assert (tmp_path / "prod.manifest.json").is_file()


def test_passages_cover_the_whole_atom_without_a_tokenizer():
    """Intro with a '#' comment in a code block; an atom without '##' sections uses its own headings."""
    from pipeline.atoms import parse
    from pipeline.index.passages import atom_passages

    text = (
        "---\nid: x\ntitle: Clean the cache\ntype: procedure\nsummary: Free disk space.\ncreated: 2026-01-01\n---\n"
        "Run this first:\n\n```bash\n# not a heading\ndu -sh /var/cache\n```\n\n"
        "### On Debian\napt-get clean\n\n### On Fedora\ndnf clean all\n\n## FAQ\n\n**Q:** Is it safe?\n**A:** Yes.\n"
    )
    passages = atom_passages(parse(text))
    assert [(p.kind, p.heading) for p in passages] == [
        ("title", "Clean the cache"),
        ("section", "On Debian"),
        ("section", "On Fedora"),
        ("faq", "Is it safe?"),
    ]
    assert passages[0].text == "Free disk space.\n\nRun this first:\n\n```bash\n# not a heading\ndu -sh /var/cache\n```"
    assert passages[0].search_text.startswith("Clean the cache\n")
    assert passages[1].search_text == "Clean the cache: On Debian\napt-get clean"
    assert (
        passages[3].text == "Q: Is it safe?\nA: Yes."
        and passages[3].search_text == "Clean the cache\nQ: Is it safe?\nA: Yes."
    )


def test_an_empty_workspace_exports_an_empty_bundle(tmp_path):
    ws = make_workspace(tmp_path / "empty", atoms={})
    report = export(ws)
    b = Bundle.load(report.path, embedder=embedder())
    assert b.manifest.counts == {"atoms": 0, "faq": 0, "sources": 0, "passages": 0}
    assert b.search("anything", k=5) == [] and b.atom_ids == []


def test_out_folder_gets_the_versioned_name(ws, tmp_path):
    (tmp_path / "bundles").mkdir()
    report = export(ws, out=tmp_path / "bundles")
    assert report.path.parent == tmp_path / "bundles" and re.fullmatch(
        r"kb-\d{8}-[0-9a-f]{8}\.duckdb", report.path.name
    )
    assert sidecar(report.path).is_file()


def test_a_status_change_reexports_without_loading_the_model(ws, tmp_path):
    """A reviewer only moves an atom to in-review: every passage is cached, torch is never needed."""
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export as export_stage

    export(ws, out=tmp_path / "a.duckdb")  # warms the workspace's embedding cache
    path = ws.atoms_dir / "pitfall" / "never-force-push-to-main.md"
    path.write_text(path.read_text().replace("status: draft", "status: in-review"))
    fresh = load_embedder(Settings.load(ws.root))
    report = export_stage.run(Settings.load(ws.root), ws, Reporter(), out=tmp_path / "b.duckdb", embedder=fresh)
    assert report.embedded == 0 and not fresh.loaded and fresh.texts_encoded == 0
    b = Bundle.load(report.path, embedder=embedder())
    assert b.atom("never-force-push-to-main")["status"] == "in-review"
