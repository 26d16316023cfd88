"""Where the framework adapters get their hits: a bundle in this process, or a running ``kb serve``.

Both give the same records (the ``POST /v1/search`` hit plus its two-hop citation: atom ->
interview, speaker and second), so a retriever behaves the same whether it embeds the query
itself or asks the server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import BundleError, ConfigError


@dataclass(frozen=True)
class Record:
    atom_id: str
    title: str
    type: str
    status: str
    score: float
    text: str
    heading: str | None
    citations: list[dict[str, Any]]

    def metadata(self) -> dict[str, Any]:
        return {
            "atom_id": self.atom_id,
            "title": self.title,
            "type": self.type,
            "status": self.status,
            "score": self.score,
            "heading": self.heading,
            "citations": self.citations,
        }


def _record(hit: dict[str, Any], query: str) -> Record:
    from pipeline.answer.citations import citation

    passage = hit.get("passage") or {}
    return Record(
        atom_id=hit["atom_id"],
        title=hit["title"],
        type=hit["type"],
        status=hit["status"],
        score=float(hit["score"]),
        text=str(passage.get("text") or hit["title"]),
        heading=passage.get("heading"),
        citations=[citation(hit, f"{query} {passage.get('text') or ''}")],
    )


class Source(ABC):
    """Search by text; ``k`` hits, best first, each with its citation."""

    @abstractmethod
    def search(self, query: str, k: int = 4, filters: dict[str, Any] | None = None) -> list[Record]: ...

    async def asearch(self, query: str, k: int = 4, filters: dict[str, Any] | None = None) -> list[Record]:
        import asyncio

        return await asyncio.to_thread(self.search, query, k, filters)


class BundleSource(Source):
    """A bundle file (or a folder's newest ``kb-*.duckdb``) loaded once, with the model it names."""

    def __init__(self, bundle: Any, settings: Settings | None = None) -> None:
        from pipeline.index.bundle import Bundle, newest_bundle

        if isinstance(bundle, Bundle):
            self.bundle = bundle
            return
        path = Path(bundle)
        if path.is_dir():
            found = newest_bundle(path)
            if found is None:
                raise BundleError(f"No kb-*.duckdb bundle in {path}.", "Run 'kb export' or pass the bundle file.")
            path = found
        from pipeline.backends.embed import embedder_for_manifest

        self.bundle = Bundle.load(path, partial(embedder_for_manifest, settings=settings or Settings.load(None)))

    def search(self, query: str, k: int = 4, filters: dict[str, Any] | None = None) -> list[Record]:
        from pipeline.answer.citations import hit_dict

        return [_record(hit_dict(h), query) for h in self.bundle.search(query, k=k, filters=filters)]


class HttpSource(Source):
    """A running ``kb serve`` (``base_url`` such as ``http://kb:8000``), with its bearer key if it has one."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"kb serve URL {base_url!r} is not http(s)", "Pass the server's base URL, e.g. http://127.0.0.1:8000"
            )
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    def _body(self, query: str, k: int, filters: dict[str, Any] | None) -> dict[str, Any]:
        return {"query": query, "k": k, **({"filters": filters} if filters else {})}

    def _records(self, response: Any, query: str) -> list[Record]:
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except Exception:  # noqa: BLE001 - any non-JSON body: show its start
                message = response.text[:200]
            raise BundleError(
                f"kb serve answered {response.status_code}: {message}", "Check the URL, the key and the server's log."
            )
        return [_record(hit, query) for hit in response.json()["results"]]

    def search(self, query: str, k: int = 4, filters: dict[str, Any] | None = None) -> list[Record]:
        import httpx

        r = httpx.post(
            f"{self.base_url}/v1/search", json=self._body(query, k, filters), headers=self.headers, timeout=self.timeout
        )
        return self._records(r, query)

    async def asearch(self, query: str, k: int = 4, filters: dict[str, Any] | None = None) -> list[Record]:
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
            r = await client.post(f"{self.base_url}/v1/search", json=self._body(query, k, filters))
        return self._records(r, query)


def source_for(target: Any, *, api_key: str | None = None, settings: Settings | None = None) -> Source:
    """A Source for a URL (a running server), a bundle path or folder, or a loaded Bundle."""
    if isinstance(target, Source):
        return target
    if isinstance(target, str) and "://" in target:
        return HttpSource(target, api_key=api_key)
    return BundleSource(target, settings)
