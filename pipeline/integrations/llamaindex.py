"""The LlamaIndex twin of the LangChain retriever: scored nodes with kb's citations in metadata.

``KbLlamaRetriever(target="http://kb:8000", k=4)``; needs ``kb-atoms[llamaindex]``.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import MissingDependencyError

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(exc.name or "llama_index.core", "llamaindex", "The LlamaIndex retriever") from None

from pipeline.integrations.source import Record, source_for


def _node(record: Record) -> NodeWithScore:
    node = TextNode(text=record.text, id_=record.atom_id, metadata=record.metadata())
    # citations are for the reader, not for the embedding or the LLM prompt of a query engine
    node.excluded_embed_metadata_keys = ["citations", "score"]
    node.excluded_llm_metadata_keys = ["score"]
    return NodeWithScore(node=node, score=record.score)


class KbLlamaRetriever(BaseRetriever):
    """Hybrid search over a kb bundle or a running kb serve, as LlamaIndex nodes."""

    def __init__(
        self, target: Any, k: int = 4, filters: dict[str, Any] | None = None, api_key: str | None = None, **kwargs: Any
    ):
        self._source = source_for(target, api_key=api_key)
        self._k = k
        self._filters = filters
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(r) for r in self._source.search(query_bundle.query_str, self._k, self._filters)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(r) for r in await self._source.asearch(query_bundle.query_str, self._k, self._filters)]
