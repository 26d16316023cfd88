"""The fast bundle load keeps bm25s' scores and the checksum's bytes exactly (issue 16)."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest
from bundle_support import embedder, export, make_workspace

from pipeline.errors import BundleError
from pipeline.index.bundle import Bundle, _read_content, manifest_for, write_bundle
from pipeline.index.content import BundleContent, checksum
from pipeline.index.lexical import Lexical, bm25_arrays, tokenize
from pipeline.models import EmbeddingInfo


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("load") / "ws")
    return Bundle.load(export(ws).path, embedder=embedder())


def _postings(data, indices, indptr, column):
    return indices[indptr[column] : indptr[column + 1]], data[indptr[column] : indptr[column + 1]]


def test_numpy_bm25_matrix_is_bm25s_own_bitwise(bundle):
    docs = [t or ["\x00"] for _, t in bundle.passage_tokens()]
    docs += [d + d[:3] for d in docs]  # repeated terms: tf > 1, other lengths
    ref = bm25s.BM25()
    ref.index(docs, show_progress=False)
    vocab, data, indices, indptr = bm25_arrays(docs, ref.k1, ref.b)
    assert set(vocab) | {""} == set(ref.vocab_dict)
    s = ref.scores
    for term, col in vocab.items():
        ours = _postings(data, indices, indptr, col)
        theirs = _postings(s["data"], s["indices"], s["indptr"], ref.vocab_dict[term])
        assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1]), term
    lex = Lexical(docs)
    for q in ["rotate the database password", "sync context deadline", "podman machine port"]:
        assert np.array_equal(lex._bm25.get_scores(tokenize([q])[0]), ref.get_scores(tokenize([q])[0]))


def test_a_bm25s_version_not_verified_indexes_through_bm25s_itself(bundle, monkeypatch):
    """kb writes bm25s' index layout only for the versions whose layout the bitwise test verified;
    under another version the same scores come from bm25s' own ``index()``."""
    from pipeline.index import lexical

    assert lexical.numpy_index_fits(bm25s.__version__)  # the locked version takes the fast path
    assert not lexical.numpy_index_fits("0.4.0") and not lexical.numpy_index_fits("1.0.0")
    docs = [t or ["\x00"] for _, t in bundle.passage_tokens()]
    fast = Lexical(docs)
    monkeypatch.setattr(lexical, "NUMPY_INDEX_VERSIONS", ("no such version",))
    slow = Lexical(docs)
    assert slow._bm25.scores is not fast._bm25.scores
    for q in ["rotate the database password", "sync context deadline"]:
        assert np.array_equal(slow.scores(q), fast.scores(q))


def test_tokens_that_need_json_escapes_round_trip_with_the_same_checksum(tmp_path):
    """The reader splits DuckDB's JSON of each token list; escapes and nulls take the exact path."""
    odd = [['say"hi', "x\\y"], ["null", "é", "ok"], [], None, ["plain", "words"], ["tab\there", "a/b"]]
    content = BundleContent(
        atoms=[("a1", "faq", "draft", "T", "S", ["t"], "{}", "body", "atoms/a1.md")],
        passages=[(i, "a1", i, "body", "h", 0, f"text {i}", f"text {i}", tokens) for i, tokens in enumerate(odd)],
        vectors=np.eye(len(odd), 4, dtype=np.float32),
    )
    embedding = EmbeddingInfo(model="m", dim=4)
    manifest = manifest_for(content, embedding, kb_version="t", statuses=["draft"])
    path = tmp_path / "odd.duckdb"
    write_bundle(path, content, manifest)  # reads the file back and checks the checksum
    found = _read_content(path)
    assert found.token_json is not None
    assert [list(p[8] or []) for p in found.passages] == [list(t or []) for t in odd]
    assert checksum(found, embedding) == manifest.checksum == checksum(content, embedding)
    found.passages[4] = (*found.passages[4][:8], ["plain", "word"])  # a changed token list alone
    found.token_json = None
    assert checksum(found, embedding) != manifest.checksum


def test_equal_tokens_share_one_string(bundle):
    found = _read_content(bundle.path)
    seen: dict[str, str] = {}
    tokens = [t for p in found.passages for t in p[8] or []]
    assert len(tokens) > len(set(tokens)) and all(t is seen.setdefault(t, t) for t in tokens)


def test_a_tampered_token_list_is_refused(bundle, tmp_path):
    import shutil

    import duckdb

    bad = tmp_path / "bad.duckdb"
    shutil.copy(bundle.path, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute("UPDATE passages SET tokens = list_append(tokens, 'forged') WHERE id = 0")
    with pytest.raises(BundleError, match="fails its checksum"):
        Bundle.load(bad, embedder=embedder())
