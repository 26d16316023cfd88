"""OpenTelemetry traces: span names and attributes in memory, and spans over the wire via OTLP/HTTP.

In this process an in-memory exporter is installed once (OTel allows one global provider); the
OTLP test runs a subprocess with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a loopback receiver
that decodes the protobuf export and checks the auth header.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs kb-atoms[otel]")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from pipeline import telemetry  # noqa: E402
from tests.fakes.openai_server import OpenAIServer, text, tool_call  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exporter():
    exp = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    processor = SimpleSpanProcessor(exp)
    provider.add_span_processor(processor)
    telemetry.reset()
    yield exp
    processor.shutdown()  # later tests export nothing more here
    exp.clear()


def by_name(spans, prefix):
    return [s for s in spans if s.name.startswith(prefix)]


def test_off_costs_nothing_when_no_provider(monkeypatch):
    from pipeline.telemetry import NO_SPAN

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        pytest.skip("a provider is installed in this process")
    telemetry.reset()
    with telemetry.span("x") as s:
        assert s is NO_SPAN


def test_chat_completion_is_one_trace_with_embedding_retrieval_answer_and_llm_spans(exporter, tmp_path, monkeypatch):
    httpx = pytest.importorskip("httpx")
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings
    from pipeline.service.app import create_app
    from tests.service.test_service import REAL_ATOM, REAL_QUESTION, Server, export_bundle, make_workspace

    monkeypatch.delenv(telemetry.CAPTURE_ENV, raising=False)
    ws = make_workspace(tmp_path / "ws")
    embedder = load_embedder(Settings.load(ws))
    bundle = export_bundle(ws, tmp_path / "dist" / "kb-t.duckdb", embedder=embedder)
    with OpenAIServer() as fake:
        settings = Settings.load(
            ws, **{"llm.base_url": fake.base_url, "llm.model": "fake-model", "llm.http_retries": 0}
        )
        app = create_app(bundle, settings, embedder=embedder)
        fake.push(
            text(
                f"Read the password from the argocd-initial-admin-secret [{REAL_ATOM}].",
                usage={"prompt_tokens": 700, "completion_tokens": 40, "total_tokens": 740},
            )
        )
        exporter.clear()
        with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
            r = c.post(
                "/v1/chat/completions",
                json={"model": "kb", "messages": [{"role": "user", "content": REAL_QUESTION}]},
                headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            )
            assert r.status_code == 200, r.text
    spans = exporter.get_finished_spans()
    [root] = by_name(spans, "POST /v1/chat/completions")  # FastAPI's own server span (its built-in telemetry)
    assert root.kind == trace.SpanKind.SERVER
    assert (
        root.attributes["http.route"] == "/v1/chat/completions" and root.attributes["http.response.status_code"] == 200
    )
    assert format(root.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"  # the caller's trace continues
    [answer] = by_name(spans, "answer")
    [retrieve] = by_name(spans, "retrieve")
    [embed] = by_name(spans, "embeddings ")
    [chat] = by_name(spans, "chat fake-model")
    for s in (answer, retrieve, embed, chat):
        assert s.context.trace_id == root.context.trace_id
    assert retrieve.attributes["kb.bundle.checksum"]
    assert REAL_ATOM in retrieve.attributes["kb.retrieval.atom_ids"]
    assert len(retrieve.attributes["kb.retrieval.scores"]) == len(retrieve.attributes["kb.retrieval.atom_ids"])
    assert embed.attributes["gen_ai.operation.name"] == "embeddings"
    assert chat.kind == trace.SpanKind.CLIENT
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "fake-model"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 700 and chat.attributes["gen_ai.usage.output_tokens"] == 40
    assert "gen_ai.input.messages" not in chat.attributes  # content only when the capture variable says so
    assert chat.parent.span_id == answer.context.span_id
    assert answer.attributes["kb.answer.uncertain"] is False
    assert list(answer.attributes["kb.answer.cited_atom_ids"]) == [REAL_ATOM]


def test_distill_reask_shows_two_chat_spans_under_the_window_with_summed_usage(exporter, tmp_path, monkeypatch):
    from pipeline.reporting import Reporter
    from pipeline.stages import distill
    from pipeline.workspace import Workspace
    from tests.fakes.distill_model import excerpt, item, make_workspace
    from tests.stages.distill.test_distill import cfg, expert_turns

    monkeypatch.setenv(telemetry.CAPTURE_ENV, "true")
    ws = Workspace.at(make_workspace(tmp_path / "ws", {"ship-it-59": excerpt()}))
    turns = expert_turns()
    bad = item(turns[0], title="Keep one primary database")
    bad["sections"] = [{"heading": "Tip", "text": "Keep one primary."}]
    u1 = {"prompt_tokens": 500, "completion_tokens": 100, "total_tokens": 600}
    u2 = {"prompt_tokens": 650, "completion_tokens": 120, "total_tokens": 770}
    with OpenAIServer() as server:
        server.push(
            tool_call("Extraction", {"items": [bad]}, usage=u1),
            tool_call("Extraction", {"items": [item(turns[0], title="Keep one primary database")]}, usage=u2),
        )
        exporter.clear()
        rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.created == 1
    spans = exporter.get_finished_spans()
    [window] = by_name(spans, "distill window")
    chats = sorted(by_name(spans, "chat "), key=lambda s: s.start_time)
    assert len(chats) == 2 and all(c.parent.span_id == window.context.span_id for c in chats)
    assert [c.attributes["kb.llm.reask"] for c in chats] == [False, True]
    assert (
        window.attributes["gen_ai.usage.input_tokens"]
        == sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats)
        == 1150
    )
    assert window.attributes["gen_ai.usage.output_tokens"] == 220
    assert window.attributes["kb.llm.reasks"] == 1
    assert window.attributes["kb.llm.cost_usd"] == pytest.approx(sum(c.attributes["kb.llm.cost_usd"] for c in chats))
    assert "Validation Error" in chats[1].attributes["gen_ai.input.messages"]  # captured: the re-ask's reason


class _Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_reach_an_otlp_http_collector_with_the_auth_header(tmp_path):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="needs kb-atoms[otel]")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    _Receiver.got = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    script = textwrap.dedent(
        """
        from pipeline import telemetry
        from opentelemetry import trace
        assert telemetry.configure("kb-test")
        with telemetry.span("answer", **{"kb.answer.uncertain": True}):
            with telemetry.span("chat fake-model", kind="client", **{"gen_ai.usage.input_tokens": 3}):
                pass
        trace.get_tracer_provider().shutdown()
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{httpd.server_address[1]}",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Basic cGstbGYtMTpzay1sZi0x",  # Langfuse: base64(public:secret)
        PYTHONPATH=str(ROOT),
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    finally:
        httpd.shutdown()
    assert done.returncode == 0, done.stderr
    [(path, headers, body)] = _Receiver.got
    assert path == "/v1/traces"
    assert headers["authorization"] == "Basic cGstbGYtMTpzay1sZi0x"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert service == "kb-test" and sorted(names) == ["answer", "chat fake-model"]
