"""A LangChain retriever over kb: ``KbRetriever(target="http://kb:8000")`` or ``KbRetriever(target="dist/")``.

Documents carry the passage text that matched, and in ``metadata`` the atom id, title, type,
status, score and the two-hop citations (atom -> interview, speaker, second). Needs
``kb-atoms[langchain]``.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import MissingDependencyError

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(exc.name or "langchain_core", "langchain", "The LangChain retriever") from None
from pydantic import ConfigDict, PrivateAttr

from pipeline.integrations.source import Record, Source, source_for


def _document(record: Record) -> Document:
    return Document(page_content=record.text, metadata=record.metadata(), id=f"{record.atom_id}")


class KbRetriever(BaseRetriever):
    """Hybrid (dense + BM25) search over a kb bundle or a running kb serve."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    target: Any
    """A ``kb serve`` base URL, a bundle file or folder, or a loaded Bundle."""
    k: int = 4
    filters: dict[str, Any] | None = None
    api_key: str | None = None
    _source: Source = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._source = source_for(self.target, api_key=self.api_key)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        return [_document(r) for r in self._source.search(query, k, kwargs.get("filters", self.filters))]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        return [_document(r) for r in await self._source.asearch(query, k, kwargs.get("filters", self.filters))]
