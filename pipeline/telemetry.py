"""OpenTelemetry traces, off unless configured: one import, and no cost when off.

Tracing turns on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set and
``kb-atoms[otel]`` is installed: spans go over OTLP/HTTP to any collector, Langfuse or LangSmith
(their OTLP endpoints; auth via ``OTEL_EXPORTER_OTLP_HEADERS``). A process that installed its own
tracer provider (an application embedding kb, or a test with an in-memory exporter) gets kb's
spans there too. Without either, :func:`span` is a no-op context manager.

The server span of each HTTP request is FastAPI's own (its built-in OpenTelemetry support, which
also continues an incoming W3C ``traceparent``); kb adds the children. Names follow the GenAI
semantic conventions (``chat <model>`` spans with ``gen_ai.*`` usage
attributes); message content is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, as the convention asks.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_lock = threading.Lock()
_state: dict[str, Any] = {"configured": False, "tracer": None}


def configure(service_name: str = "kb") -> bool:
    """Install an OTLP/HTTP exporter when the endpoint variable is set (idempotent); True when tracing."""
    with _lock:
        if _state["configured"]:
            return _state["tracer"] is not None
        _state["configured"] = True
        try:
            from opentelemetry import trace
        except ImportError:
            return False
        if any(os.environ.get(v) for v in _ENDPOINT_ENVS):
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                from opentelemetry.sdk.resources import Resource
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import BatchSpanProcessor
            except ImportError:
                from pipeline.errors import MissingDependencyError

                raise MissingDependencyError(
                    "opentelemetry-sdk", "otel", "Tracing (OTEL_EXPORTER_OTLP_ENDPOINT is set)"
                ) from None
            name = os.environ.get("OTEL_SERVICE_NAME") or service_name
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            trace.set_tracer_provider(provider)
        _state["tracer"] = _tracer_if_real()
        return _state["tracer"] is not None


def _tracer_if_real() -> Any | None:
    """kb's tracer when a real (SDK) provider is installed, else None (so spans cost nothing)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return None
    from pipeline import __version__

    return trace.get_tracer("kb", __version__)


def tracer() -> Any | None:
    if not _state["configured"]:
        configure()
    if _state["tracer"] is None:  # a provider installed after configure() (tests, host apps)
        _state["tracer"] = _tracer_if_real()
    return _state["tracer"]


def reset() -> None:
    """Forget the cached tracer (tests that swap providers)."""
    with _lock:
        _state.update(configured=False, tracer=None)


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None: ...
    def set_attributes(self, attributes: dict[str, Any]) -> None: ...
    def add_event(self, name: str, attributes: dict[str, Any] | None = None) -> None: ...
    def record_exception(self, exc: BaseException) -> None: ...
    def is_recording(self) -> bool:
        return False


NO_SPAN = _NoSpan()


@contextlib.contextmanager
def span(name: str, kind: str = "internal", **attributes: Any) -> Iterator[Any]:
    """A child of the current span (or a root), with ``attributes`` (None values left out)."""
    t = tracer()
    if t is None:
        yield NO_SPAN
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    kinds = {"internal": SpanKind.INTERNAL, "server": SpanKind.SERVER, "client": SpanKind.CLIENT}
    with t.start_as_current_span(name, kind=kinds[kind], record_exception=False, set_status_on_exception=False) as s:
        s.set_attributes(clean(attributes))
        try:
            yield s
        except BaseException as exc:
            s.record_exception(exc)
            s.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            s.set_attribute("error.type", type(exc).__name__)
            raise


def clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """OTel takes str/bool/int/float and lists of one of them; everything else becomes JSON text."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, bool, int, float)) for v in value):
            out[key] = list(value)
        else:
            out[key] = json.dumps(value, default=str)
    return out


def capture_content() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("1", "true", "yes")


def chat_attributes(model: str, request: dict[str, Any]) -> dict[str, Any]:
    """GenAI request attributes of one chat completion (content only when capture is on)."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",  # older name, still what several backends read
        "gen_ai.request.model": model,
        "gen_ai.request.temperature": request.get("temperature"),
        "gen_ai.request.max_tokens": request.get("max_tokens"),
    }
    if capture_content():
        attrs["gen_ai.input.messages"] = json.dumps(request.get("messages") or [], default=str)
    return attrs


def chat_result_attributes(
    response: Any, tokens_in: int, tokens_out: int, cost_usd: float, reask: bool
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        "gen_ai.response.model": getattr(response, "model", None),
        "gen_ai.response.id": getattr(response, "id", None),
        "kb.llm.cost_usd": round(cost_usd, 8),
        "kb.llm.reask": reask,
    }
    choices = getattr(response, "choices", None) or []
    reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    if capture_content() and choices:
        message = getattr(choices[0], "message", None)
        calls = getattr(message, "tool_calls", None) or []
        content = getattr(message, "content", None)
        out = [{"role": "assistant", "content": content, "tool_calls": [c.function.arguments for c in calls]}]
        attrs["gen_ai.output.messages"] = json.dumps(out, default=str)
    return attrs


def answer_attributes(result: Any) -> dict[str, Any]:
    """What an answer span carries: cited atoms, uncertain, mode, evidence (and usage with an LLM)."""
    cited = [c.get("atom_id") for c in getattr(result, "citations", []) or [] if isinstance(c, dict)]
    return clean(
        {
            "kb.answer.uncertain": bool(getattr(result, "uncertain", False)),
            "kb.answer.cited_atom_ids": [str(c) for c in cited if c],
            "kb.answer.mode": getattr(result, "mode", None),
            "kb.answer.evidence": float(getattr(result, "evidence", 0.0) or 0.0),
            "gen_ai.usage.input_tokens": getattr(result, "tokens_in", None) or None,
            "gen_ai.usage.output_tokens": getattr(result, "tokens_out", None) or None,
        }
    )
