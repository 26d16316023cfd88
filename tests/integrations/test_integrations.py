"""LangChain and LlamaIndex retrievers over a real bundle and over a real kb serve on loopback.

The LangChain retriever runs langchain-tests' standard retriever integration suite (k as a
constructor parameter and as an invoke argument, sync and async) against the bundle; both
adapters are checked to carry the two-hop citation (atom -> interview, speaker, second).
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi")

CHAOS_ATOM = "run-chaos-checks-after-an-argo-cd-sync"
CHAOS_QUERY = "trigger a chaos workflow after Argo CD upgrades an application"

_BUILT: dict = {}


def built_bundle(tmp_path_factory=None):
    """(bundle path, embedder): the service tests' workspace, exported once for this module."""
    if "bundle" not in _BUILT:
        import tempfile
        from pathlib import Path

        from pipeline.backends.embed import load_embedder
        from pipeline.config import Settings
        from tests.service.test_service import export_bundle, make_workspace

        base = Path(tempfile.mkdtemp(prefix="kb-integrations-"))
        ws = make_workspace(base / "ws")
        embedder = load_embedder(Settings.load(ws))
        _BUILT["bundle"] = export_bundle(ws, base / "dist" / "kb-test.duckdb", embedder=embedder)
        _BUILT["embedder"] = embedder
        from pipeline.index.bundle import Bundle

        _BUILT["loaded"] = Bundle.load(_BUILT["bundle"], embedder)
    return _BUILT


@pytest.fixture(scope="module")
def server():
    httpx = pytest.importorskip("httpx")
    from pipeline.config import Settings
    from pipeline.service.app import create_app
    from tests.service.test_service import Server

    b = built_bundle()
    app = create_app(b["bundle"], Settings.load(None), embedder=b["embedder"])
    with Server(app) as srv:
        assert httpx.get(srv.url + "/healthz").status_code == 200
        yield srv


def _has_two_hop(metadata: dict) -> bool:
    [cite] = metadata["citations"]
    src = cite["sources"][0]
    return cite["atom_id"] == metadata["atom_id"] and src["interview"] == "ship-it-14" and src["start"] == 2270.0


# -- LangChain -----------------------------------------------------------------------------------

langchain_tests = pytest.importorskip(
    "langchain_tests.integration_tests", reason="needs kb-atoms[langchain] + langchain-tests"
)


class TestKbRetrieverStandard(langchain_tests.RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        from pipeline.integrations.langchain import KbRetriever

        return KbRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"target": built_bundle()["loaded"]}

    @property
    def retriever_query_example(self) -> str:
        return "How do I reset the admin password?"


def test_langchain_documents_carry_citations_from_the_bundle():
    from pipeline.integrations.langchain import KbRetriever

    docs = KbRetriever(target=built_bundle()["loaded"], k=3).invoke(CHAOS_QUERY)
    assert docs[0].metadata["atom_id"] == CHAOS_ATOM
    assert _has_two_hop(docs[0].metadata)
    assert {"title", "type", "status", "score"} <= set(docs[0].metadata)
    assert "chaos" in docs[0].page_content.lower()


def test_langchain_over_http_matches_the_bundle(server):
    from pipeline.integrations.langchain import KbRetriever

    over_http = KbRetriever(target=server.url, k=3)
    local = KbRetriever(target=built_bundle()["loaded"], k=3)
    http_docs = over_http.invoke(CHAOS_QUERY)
    assert [d.metadata["atom_id"] for d in http_docs] == [d.metadata["atom_id"] for d in local.invoke(CHAOS_QUERY)]
    assert _has_two_hop(http_docs[0].metadata)
    async_docs = asyncio.run(over_http.ainvoke(CHAOS_QUERY, k=1))
    assert [d.metadata["atom_id"] for d in async_docs] == [CHAOS_ATOM]


def test_langchain_filters_and_bad_url_errors():
    from pipeline.errors import ConfigError
    from pipeline.integrations.langchain import KbRetriever

    docs = KbRetriever(target=built_bundle()["loaded"], k=5, filters={"type": "troubleshooting-tip"}).invoke(
        CHAOS_QUERY
    )
    assert docs and {d.metadata["type"] for d in docs} == {"troubleshooting-tip"}
    with pytest.raises(ConfigError, match="not http"):
        KbRetriever(target="ftp://kb:8000")


# -- LlamaIndex ----------------------------------------------------------------------------------


def test_llamaindex_returns_scored_nodes_with_citations(server):
    pytest.importorskip("llama_index.core", reason="needs kb-atoms[llamaindex]")
    from llama_index.core.schema import NodeWithScore

    from pipeline.integrations.llamaindex import KbLlamaRetriever

    for target in (built_bundle()["loaded"], server.url):
        nodes = KbLlamaRetriever(target, k=3).retrieve(CHAOS_QUERY)
        assert len(nodes) == 3 and all(isinstance(n, NodeWithScore) for n in nodes)
        assert nodes[0].node.node_id == CHAOS_ATOM and nodes[0].score > 0
        assert [n.score for n in nodes] == sorted((n.score for n in nodes), reverse=True)
        assert _has_two_hop(nodes[0].node.metadata)
    nodes = asyncio.run(KbLlamaRetriever(server.url, k=2).aretrieve(CHAOS_QUERY))
    assert len(nodes) == 2
