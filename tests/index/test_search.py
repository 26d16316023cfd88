"""Hybrid search over a loaded bundle: fields, filters, fusion, exactness of the dense scan, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from bundle_support import embedder, export, make_workspace

from pipeline.errors import InputError, MissingDependencyError
from pipeline.index.bundle import Bundle
from pipeline.index.lexical import Lexical, tokenize
from pipeline.index.search import SearchCore


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("search") / "ws")
    return Bundle.load(export(ws).path, embedder=embedder())


def test_hit_fields(bundle):
    hits = bundle.search("Do we need downtime to change the database password?", k=3)
    top = hits[0]
    assert top.atom_id == "rotate-the-postgres-password" and top.rank == 1
    assert (top.title, top.type, top.status) == ("Rotate the Postgres password", "procedure", "in-review")
    assert top.passage == {
        "kind": "faq",
        "heading": "Do I need downtime to rotate the database password?",
        "text": "Q: Do I need downtime to rotate the database password?\n"
        "A: No, pgbouncer reconnects with the new secret after a rolling restart.",
    }
    assert top.sources == [{"document": "runbooks/postgres.md", "heading": "Password rotation", "line": 12}]
    assert 0.5 < top.dense_score <= 1.0 and top.lexical_score > 0
    assert top.score == pytest.approx(2 / 61)  # first both by cosine and by BM25
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.atom_id for h in hits}) == len(hits)  # one hit per atom
    d = top.to_dict()
    assert set(d) >= {
        "atom_id",
        "title",
        "type",
        "status",
        "score",
        "passage",
        "sources",
        "dense_score",
        "lexical_score",
    }


def test_filters(bundle):
    q = "what should I do"
    assert {h.atom_id for h in bundle.search(q, filters={"type": "pitfall"})} == {"never-force-push-to-main"}
    assert {h.atom_id for h in bundle.search(q, filters={"status": ["validated", "in-review"]})} == {
        "argocd-sync-context-deadline-exceeded",
        "rotate-the-postgres-password",
    }
    assert {h.atom_id for h in bundle.search(q, filters={"tag": "secrets"})} == {"rotate-the-postgres-password"}
    assert {h.atom_id for h in bundle.search(q, filters={"tags": ["git", "sync"]})} == {
        "never-force-push-to-main",
        "argocd-sync-context-deadline-exceeded",
    }
    assert bundle.search(q, filters={"type": "error", "tag": "git"}) == []
    assert len(bundle.search(q, filters={"type": None, "tag": []})) == 3  # empty filters are ignored
    with pytest.raises(InputError, match="unknown search filter 'colour'"):
        bundle.search(q, filters={"colour": "red"})
    with pytest.raises(InputError, match="type='eror' is not a known type"):
        bundle.search(q, filters={"type": "eror"})


def test_lexical_half_finds_exact_terms(bundle):
    """A rare exact term (an env var) ranks its atom first through BM25 even when phrased oddly."""
    hits = bundle.search("ARGOCD_EXEC_TIMEOUT", k=3)
    assert hits[0].atom_id == "argocd-sync-context-deadline-exceeded" and hits[0].lexical_score > 0
    assert hits[0].passage["heading"] == "How to resolve"
    assert bundle.search("", k=3) == [] and bundle.search("   ", k=3) == []


def test_lexical_tokens_are_stemmed_and_stopword_free():
    assert tokenize(["The repo-servers were timing out"]) == [["repo", "server", "were", "time", "out"]]
    lex = Lexical(tokenize(["timeouts of the repo server", "git revert", ""]))
    scores = lex.scores("timeout")
    assert scores[0] > 0 and scores[1] == 0 and scores[2] == 0 and len(scores) == 3


def test_dense_core_is_the_exact_numpy_ranking():
    """With passages one per atom and no lexical half, the order is exactly numpy's full sort."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((2000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    core = SearchCore(vectors, np.arange(2000), 2000)
    q = vectors[5] + 0.1 * rng.standard_normal(64).astype(np.float32)
    expected = np.argsort(-(vectors @ q))[:10]
    assert [m.atom for m in core.search(q, k=10)] == list(expected)
    assert core.search(q, k=10)[0].dense == pytest.approx(float((vectors @ q).max()), rel=1e-6)


def test_dense_core_groups_passages_per_atom():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    atom_of = np.repeat(np.arange(100), 3)  # three passages per atom
    core = SearchCore(vectors, atom_of, 100)
    q = vectors[10]
    per_atom = (vectors @ q).reshape(100, 3).max(axis=1)
    matches = core.search(q, k=5)
    assert [m.atom for m in matches] == list(np.argsort(-per_atom)[:5])
    assert matches[0].passage == 10 and matches[0].dense == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="grouped by atom"):
        SearchCore(vectors, rng.permutation(atom_of), 100)


def test_dense_only_shortcut_equals_the_general_fusion():
    """Dense-only searches skip the fusion (one pass over the ranked candidates); they must return
    exactly what the general path (``_fuse``) returns, with and without a filter, and with the
    ANN index when faiss is installed."""
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((1500, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    atom_of = np.sort(rng.integers(0, 400, 1500))
    n_atoms = int(atom_of[-1]) + 1
    cores = [SearchCore(vectors, atom_of, n_atoms)]
    try:
        from pipeline.index.ann import AnnParams, FaissDense

        cores.append(SearchCore(vectors, atom_of, n_atoms, dense_index=FaissDense(vectors, AnnParams())))
    except MissingDependencyError:  # no faiss (the `ann` extra): the exact path only
        pass
    for core in cores:
        for i in range(20):
            q = vectors[i * 7] + 0.3 * rng.standard_normal(32).astype(np.float32)
            mask = None if i % 2 else rng.random(1500) < 0.6
            dense = np.where(mask, vectors @ q, -np.inf) if mask is not None else vectors @ q
            top = np.argsort(-dense, kind="stable")[:50]
            top = top[np.isfinite(dense[top])]
            if core.dense_index is not None:
                top, _ = core.dense_index.top(q, 50, mask)
            general = core._fuse([top], [1.0 / (61 + np.arange(len(top)))], 10, dense, None)
            got = core.search(q, k=10, mask=mask)
            assert [(m.atom, m.passage, m.score) for m in got] == [(m.atom, m.passage, m.score) for m in general]
            assert [m.dense for m in got] == pytest.approx([m.dense for m in general], abs=1e-6)


def test_concurrent_searches_agree(bundle):
    questions = [
        "repo server timeout",
        "rotate password",
        "force push",
        "how do I undo a bad commit",
        "sync hangs for a minute",
    ] * 8
    expected = [[h.atom_id for h in bundle.search(q, k=3)] for q in questions]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda q: [h.atom_id for h in bundle.search(q, k=3)], questions))
    assert got == expected


def test_load_with_a_factory_uses_the_manifest_model(bundle):
    """A factory embedder loads the model the manifest names through the embedder plug-in point."""
    from pipeline.backends.embed import embedder_for_manifest

    b = Bundle.load(bundle.path, embedder_for_manifest)
    assert b.embedder is not None and b.embedder.model_id == "all-MiniLM-L6-v2"
    assert b.search("ARGOCD_EXEC_TIMEOUT", k=1)[0].atom_id == "argocd-sync-context-deadline-exceeded"
