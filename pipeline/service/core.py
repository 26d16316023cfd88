"""What the service's handlers share: the loaded bundle, the gate, the LLM, metrics, and JSON helpers.

Handlers are plain functions: FastAPI runs them in its thread pool, and each one leases the
current bundle so a reload never pulls it from under them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from pipeline import telemetry
from pipeline.answer import answer
from pipeline.config import Settings
from pipeline.errors import BackendError, ConfigError, MissingDependencyError
from pipeline.service.metrics import Metrics
from pipeline.service.reload import BundleHolder, Live, Watcher

log = logging.getLogger("kb.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_


@dataclass
class Service:
    """What the handlers share."""

    holder: BundleHolder
    settings: Settings
    metrics: Metrics
    llm: Any | None
    watcher: Watcher | None = None
    gaps: Any = None  # GapRecorder: uncertain questions and drafts asked about go to the gap log
    workspace: Any = None  # pipeline.workspace.Workspace, when serving from one (tools that need it)
    gate: Any = None  # bounds concurrent retrievals (embedding is CPU-bound): FIFO queue, not thrash
    fanout: Any = None  # ReloadSignal shared by several serving processes (kb serve --workers N)

    def __post_init__(self) -> None:
        if self.gate is None:
            # One retrieval per model thread (settings.threads): with threads=1, one query embeds
            # at a time while the other core parses and serialises. Measured with 50 clients
            # (bench/service_bench.py): p99 1.07 s gated vs 2.31 s ungated, same throughput.
            # With micro-batching (serve.batch_window_ms > 0) the batcher queues the encoder instead,
            # and the gate admits a batch's worth of retrievals at once.
            batching = self.settings.serve.batch_window_ms > 0
            self.gate = threading.BoundedSemaphore(
                self.settings.serve.batch_max if batching else max(1, self.settings.threads)
            )

    def search(self, live: Live, query: str, k: int, filters: dict | None = None) -> list[Any]:
        with self.gate:
            return live.bundle.search(query, k=k, filters=filters)

    def check_text(self, text: str, field: str) -> str:
        limit = self.settings.serve.max_query_chars
        if len(text) > limit:
            raise ApiError(
                422,
                f"'{field}' is {len(text)} characters; the limit is {limit} (serve.max_query_chars).",
                "query_too_long",
            )
        if not text.strip():
            raise ApiError(422, f"'{field}' is empty.", "invalid_request_error")
        return text

    def ask(self, question: str, k: int = 5, history: list[Any] | None = None) -> Any:
        """One answer, with the earlier turns ``history`` (``[{role, content}]``) as context."""
        self.check_text(question, "question")
        turns = [t.model_dump() if hasattr(t, "model_dump") else t for t in history or []]
        for turn in turns:
            if isinstance(turn.get("content"), str) and len(turn["content"]) > 4 * self.settings.serve.max_query_chars:
                raise ApiError(422, "A history turn is too long (4 x serve.max_query_chars).", "query_too_long")
        with self.holder.lease() as live:
            try:
                threshold = live.extra["calibration"].threshold if "calibration" in live.extra else None
                with telemetry.span("answer", **{"kb.bundle.checksum": live.manifest.checksum}) as span:
                    result = answer(
                        _Gated(live.bundle, self.gate),
                        question,
                        self.settings,
                        llm=self.llm,
                        k=k,
                        threshold=threshold,
                        history=turns,
                        stats=live.extra.get("stats"),
                    )
                    span.set_attributes(telemetry.answer_attributes(result))
            except (BackendError, ConfigError, MissingDependencyError) as exc:
                raise ApiError(502, f"The LLM failed: {exc.message}", "llm_error") from None
            if self.gaps is not None:
                self.gaps.note(question, result, lambda a: (live.bundle.atom(a) or {}).get("status"))
            if self.settings.serve.site_url:
                from pipeline.answer.citations import site_links

                for c in result.citations:
                    c.update(
                        site_links(c, (live.bundle.atom(c["atom_id"]) or {}).get("path"), self.settings.serve.site_url)
                    )
        price = self.settings.llm
        cost = (result.tokens_in * price.price_in_per_1m + result.tokens_out * price.price_out_per_1m) / 1e6
        self.metrics.observe_answer(
            result.mode, result.uncertain, result.evidence, result.tokens_in, result.tokens_out, cost
        )
        return result

    def on_reload(self, live: Live | None, exc: Exception | None) -> None:
        if live is not None:
            self.metrics.reloads.labels(result="ok").inc()
            self._describe(live)
            log.warning("kb serve: now serving %s", live.label)
        else:
            self.metrics.reloads.labels(result="refused").inc()
            serving = self.holder.current.label if self.holder.current else "nothing yet"
            log.warning("kb serve: new bundle refused, still serving %s: %s", serving, exc)

    def reload(self, path: str | None = None) -> Live:
        """Reload here; with several serving processes, announce it so every other one follows."""
        try:
            live = self.holder.reload(path)
        except Exception as exc:
            self.on_reload(None, exc)
            raise
        self.on_reload(live, None)
        if self.fanout is not None:
            generation = self.fanout.announce(path)
            if self.watcher is not None:
                self.watcher.seen = generation  # this process already follows it
        return live

    def on_first_load(self, live: Live | None, exc: Exception | None) -> None:
        """The background first load ended: describe the bundle, or say why it failed."""
        if live is not None:
            self._describe(live)
            log.warning("kb serve: ready, serving %s (%s atoms)", live.label, live.manifest.counts.get("atoms", "?"))
        else:
            self.metrics.reloads.labels(result="refused").inc()
            log.error("kb serve: the bundle could not be loaded (/readyz stays 503): %s", exc)

    def _describe(self, live: Live) -> None:
        m = live.manifest
        self.metrics.set_bundle(live.label, m.checksum, m.embedding.model)


class _Gated:
    """A bundle whose searches pass the service's gate (the LLM call after them does not)."""

    def __init__(self, bundle: Any, gate: Any) -> None:
        self._bundle, self._gate = bundle, gate

    def search(
        self,
        query: str,
        k: int = 10,
        filters: dict | None = None,
        *,
        query_vector: Any | None = None,
        exclude_passages: list[int] | None = None,
    ) -> list[Any]:
        with self._gate:
            return self._bundle.search(
                query, k=k, filters=filters, query_vector=query_vector, exclude_passages=exclude_passages
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bundle, name)


class SerialLlm:
    """A given LLM client, one request at a time (an LlmClient keeps per-call state)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        with self._lock:
            return self.client.chat(messages, **kwargs)


class PerThreadLlm:
    """One LlmClient per worker thread, so concurrent answers don't share per-call state."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.backends.llm import make_client

        self.settings = settings
        self._local = threading.local()
        self._local.client = make_client(settings)  # fail at startup, with the fix, if misconfigured

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from pipeline.backends.llm import make_client

            client = self._local.client = make_client(self.settings)
        return client.chat(messages, **kwargs)


def bundle_info(live: Live) -> dict[str, Any]:
    m = live.manifest
    return {
        "kind": getattr(live.bundle, "kind", "bundle"),
        "path": live.label,
        "checksum": m.checksum,
        "created": m.created.isoformat() if hasattr(m.created, "isoformat") else str(m.created),
        "kb_version": m.kb_version,
        "embedding": {"model": m.embedding.model, "dim": m.embedding.dim},
        "counts": dict(m.counts),
        "statuses": list(m.statuses),
        "uncertain_below": live.extra["calibration"].to_dict() if "calibration" in live.extra else None,
        "dense": getattr(live.bundle, "dense_kind", None),
    }


def jsonable(value: Any) -> Any:
    """Dates and numpy scalars in bundle rows become JSON types."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    return str(value)
