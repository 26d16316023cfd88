"""The chat endpoint over real HTTP on loopback: uvicorn serving a real DuckDB bundle.

The bundle is exported (by the real export stage) from atoms cut from the Argo CD FAQ and the
Podman troubleshooting guide (tests/data/service/workspace), plus one atom grounded in a quote
from a Changelog "Ship It!" interview. The LLM is the loopback fake OpenAI server.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fakes.openai_server import OpenAIServer, text
from tests.paths import TESTS_DATA

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tests.serve_support import wait_for  # noqa: E402  (imports httpx)

DATA = TESTS_DATA / "service"
KEY_ENV = "KB_TEST_SERVE_KEY"

REAL_QUESTION = "I forgot the Argo CD admin password, how can I reset it?"
REAL_ATOM = "argocd-i-forgot-the-admin-password-how-do-i-reset-it"
OFF_TOPIC = "What is a good recipe for banana bread?"


# ---------------------------------------------------------------------------------------------
# fixtures: workspace -> real export -> bundle; uvicorn in a thread on a free port


def make_workspace(root: Path) -> Path:
    shutil.copytree(DATA / "workspace", root)
    return root


def export_bundle(ws_root: Path, out: Path, embedder=None) -> Path:
    """Export with the real stage (tests may import stages; the service may not)."""
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export
    from pipeline.workspace import Workspace

    settings = Settings.load(ws_root)
    export.run(
        settings, Workspace.at(ws_root, discover=False), Reporter(), out=out, embedder=embedder or _EMBEDDER.get("x")
    )
    return out


_EMBEDDER: dict = {}  # the session's embedder, once loaded: exports reuse it


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """(workspace root, bundle path, a loaded embedder shared by every app in the session)."""
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings

    base = tmp_path_factory.mktemp("service")
    ws = make_workspace(base / "ws")
    embedder = _EMBEDDER.setdefault("x", load_embedder(Settings.load(ws)))
    bundle = export_bundle(ws, base / "dist" / "kb-test.duckdb")
    return ws, bundle, embedder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def settings_for(ws: Path, **flags):
    from pipeline.config import Settings

    return Settings.load(ws, **flags)


def make_app(built, source=None, **flags):
    from pipeline.service.app import create_app

    ws, bundle, embedder = built
    return create_app(source or bundle, settings_for(ws, **flags), embedder=embedder)


@pytest.fixture(scope="module")
def server(built):
    with Server(make_app(built)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# endpoints


def test_healthz_describes_the_bundle(client, built):
    from pipeline.index.bundle import Bundle

    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    b = Bundle.load(built[1], embedder=built[2])
    try:
        assert body["bundle"]["checksum"] == b.manifest.checksum
        assert body["bundle"]["embedding"]["model"] == b.manifest.embedding.model
    finally:
        b.close()
    assert body["llm"] is False
    cal = body["bundle"]["uncertain_below"]  # calibrated on this bundle's own held-out FAQ questions
    # measured on this bundle's own FAQ questions (answerable with the pair held out, unanswerable
    # with the whole atom held out); too few usable pairs here, so the dev-measured default
    assert cal["source"] in ("bundle", "default") and 0.3 < cal["threshold"] < 1.2


def test_uncertain_threshold_setting_wins(built):
    from pipeline.answer.calibrate import calibrate

    ws, bundle, embedder = built
    from pipeline.index.bundle import Bundle

    b = Bundle.load(bundle, embedder=embedder)
    cal = calibrate(b, settings_for(ws, **{"serve.uncertain_below": 5.0})).to_dict()
    assert cal["threshold"] == 5.0 and cal["source"] == "setting"
    with Server(make_app(built, **{"serve.uncertain_below": 5.0})) as srv, httpx.Client(base_url=srv.url) as c:
        body = c.post("/v1/ask", json={"question": REAL_QUESTION}).json()
    assert body["uncertain"] is True  # nothing is that close: every answer is flagged


def test_atom_by_id_and_404(client):
    r = client.get(f"/v1/atoms/{REAL_ATOM}")
    assert r.status_code == 200
    atom = r.json()
    assert "admin password" in json.dumps(atom)
    assert REAL_ATOM in json.dumps(atom)
    r = client.get("/v1/atoms/no-such-atom")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "No atom 'no-such-atom' in this bundle."


def test_search_returns_hits_with_passage_and_sources(client):
    r = client.post("/v1/search", json={"query": "podman volume mount permission denied", "k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert 1 <= len(results) <= 3
    top = results[0]
    assert set(top) == {"atom_id", "title", "type", "status", "score", "passage", "sources"}
    assert top["atom_id"] == "podman-can-t-use-volume-mount-get-permission-denied"
    assert top["passage"]["text"]
    assert top["sources"][0]["document"] == "podman-docs/troubleshooting.md"
    assert [h["score"] for h in results] == sorted((h["score"] for h in results), reverse=True)


def test_search_filters_by_type(client):
    r = client.post("/v1/search", json={"query": "argo cd sync", "k": 10, "filters": {"type": "error"}})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results and {h["type"] for h in results} == {"error"}


def test_ask_real_question_is_cited_and_certain(client):
    r = client.post("/v1/ask", json={"question": REAL_QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"answer", "uncertain", "answered_question", "citations", "suggestions"}
    assert body["uncertain"] is False and body["answered_question"] == REAL_QUESTION and body["suggestions"] == []
    assert "argocd-initial-admin-secret" in body["answer"]  # the FAQ's own answer, verbatim
    assert body["citations"][0]["atom_id"] == REAL_ATOM
    assert body["citations"][0]["sources"][0]["heading"] == "I forgot the admin password, how do I reset it?"


def test_ask_off_topic_is_uncertain(client):
    r = client.post("/v1/ask", json={"question": OFF_TOPIC})
    assert r.status_code == 200
    body = r.json()
    assert body["uncertain"] is True and body["citations"] == []  # never an unrelated atom's text
    assert body["answer"].startswith("I don't know")


def test_ask_two_hop_citation_reaches_the_interview_moment(client):
    r = client.post(
        "/v1/ask", json={"question": "Can chaos experiments run automatically after Argo CD upgrades an app?"}
    )
    body = r.json()
    assert body["citations"][0]["atom_id"] == "run-chaos-checks-after-an-argo-cd-sync"
    src = body["citations"][0]["sources"][0]
    assert src["interview"] == "ship-it-14" and src["speaker"] == "Karthik Satchitanand"
    assert src["start"] == 2270.0 and "presubscribed chaos workflow" in src["quote"]


# ---------------------------------------------------------------------------------------------
# bad requests


def test_malformed_json_is_400_with_a_clear_message(client):
    r = client.post("/v1/ask", content=b'{"question": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_json" and err["message"].startswith("Malformed JSON body")


def test_invalid_fields_are_422_naming_the_field(client):
    r = client.post("/v1/search", json={"query": "x", "k": 0})
    assert r.status_code == 422
    assert "'k'" in r.json()["error"]["message"]
    r = client.post("/v1/ask", json={"questio": "typo"})
    assert r.status_code == 422
    assert "'question'" in r.json()["error"]["message"]
    r = client.post("/v1/ask", content=b'{"question": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]["message"]


def test_oversized_body_is_413_with_or_without_content_length(client):
    big = {"question": "x" * 70_000}
    r = client.post("/v1/ask", json=big)
    assert r.status_code == 413
    assert "serve.max_body_bytes" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: the server must count
        yield b'{"question": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    r = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_query_too_long_is_422(client):
    r = client.post("/v1/search", json={"query": "word " * 500})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["type"] == "query_too_long" and "serve.max_query_chars" in err["message"]
    r = client.post("/v1/ask", json={"question": "   "})
    assert r.status_code == 422


def test_unknown_endpoint_is_json_404(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert "No such endpoint" in r.json()["error"]["message"]


# ---------------------------------------------------------------------------------------------
# auth


def test_bearer_key(built, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "s3cret-key")
    with Server(make_app(built, **{"serve.api_key_env": KEY_ENV})) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz").status_code == 200  # health checks stay open
        r = c.post("/v1/ask", json={"question": REAL_QUESTION})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["message"].startswith("Missing bearer key")
        r = c.post("/v1/ask", json={"question": REAL_QUESTION}, headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"]["message"].startswith("Invalid bearer key")
        assert c.get("/metrics").status_code == 401
        ok = c.post("/v1/ask", json={"question": REAL_QUESTION}, headers={"authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200 and ok.json()["citations"]


# ---------------------------------------------------------------------------------------------
# OpenAI compatibility: the official client


def test_openai_client_chat_completion(server):
    openai = pytest.importorskip("openai")
    oc = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    done = oc.chat.completions.create(model="kb", messages=[{"role": "user", "content": REAL_QUESTION}])
    content = done.choices[0].message.content
    assert "argocd-initial-admin-secret" in content
    assert f"[{REAL_ATOM}]" in content and "Sources:" in content
    extra = done.model_extra
    assert extra["uncertain"] is False
    assert extra["citations"][0]["atom_id"] == REAL_ATOM
    assert done.usage.total_tokens > 0
    assert [m.id for m in oc.models.list()] == ["kb", "kb-ops", "kb-agent"]

    stream = oc.chat.completions.create(
        model="kb",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": REAL_QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, last_extra, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason == "stop":
                last_extra = chunk.model_extra
    assert len(pieces) > 3
    assert "".join(pieces) == content  # the same checked answer, streamed
    assert last_extra["citations"][0]["atom_id"] == REAL_ATOM
    assert usage is not None and usage.total_tokens > 0


def test_openai_client_sees_errors(server):
    openai = pytest.importorskip("openai")
    oc = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        oc.chat.completions.create(model="kb", messages=[{"role": "system", "content": "no question"}])
    assert "user message" in str(info.value)


# ---------------------------------------------------------------------------------------------
# metrics


def test_metrics_count_requests_latency_scores_and_uncertainty(client):
    client.post("/v1/ask", json={"question": REAL_QUESTION})
    client.post("/v1/ask", json={"question": OFF_TOPIC})
    client.post("/v1/search", json={"query": "podman"})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = r.text
    assert 'kb_requests_total{method="POST",route="/v1/ask",status="200"}' in m
    assert 'kb_request_latency_seconds_bucket{le="0.5",route="/v1/search"}' in m
    assert "kb_retrieval_top_similarity_count" in m
    assert 'kb_answers_total{mode="extractive",uncertain="true"}' in m
    ratio = [line for line in m.splitlines() if line.startswith("kb_uncertain_ratio ")][0]
    assert 0.0 < float(ratio.split()[1]) < 1.0
    assert "kb_bundle_info{" in m


# ---------------------------------------------------------------------------------------------
# reload: atomic swap, no dropped requests, a bad bundle refused


NEW_ATOM = """---
id: podman-machine-init-fails-on-low-disk
title: "Podman machine init fails when the disk is nearly full"
type: troubleshooting-tip
summary: A test atom added between two exports.
created: 2026-11-23
---
Added to check that a reload serves the new bundle.

## Symptom

podman machine init stops with no space left on device.

## Tip

Free disk space before creating the machine image.

## FAQ

**Q:** Why does podman machine init fail with no space left on device?
**A:** The machine image needs free disk space; free some and retry.
"""


def test_reload_swaps_without_dropping_requests(built, tmp_path):
    ws, _, embedder = built
    ws2 = make_workspace(tmp_path / "ws2")
    dist = tmp_path / "dist"
    first = export_bundle(ws2, dist / "kb-1.duckdb")
    with Server(make_app(built, source=first)) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        before = c.get("/healthz").json()["bundle"]["checksum"]
        (ws2 / "atoms" / "troubleshooting-tip" / "podman-machine-init-fails-on-low-disk.md").write_text(NEW_ATOM)
        second = export_bundle(ws2, dist / "kb-2.duckdb")

        stop = threading.Event()
        log: list[tuple[float, float, int]] = []  # (sent, answered, status) of every hammer request

        def hammer() -> None:
            with httpx.Client(base_url=srv.url, timeout=120) as hc:
                while not stop.is_set():
                    sent = time.monotonic()
                    code = hc.post("/v1/search", json={"query": "podman permission denied", "k": 3}).status_code
                    log.append((sent, time.monotonic(), code))
                    time.sleep(0.01)  # leaves the reload its share of a loaded machine

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(hammer) for _ in range(4)]
            try:
                wait_for(lambda: len(log) >= 4, timeout=120, interval=0.05, what="requests before the reload")
                began = time.monotonic()
                r = c.post("/admin/reload", json={"path": str(second)}, timeout=120)
                ended = time.monotonic()
                wait_for(lambda: any(sent > ended for sent, _, _ in log), 120, 0.05, "requests after the reload")
            finally:  # never leave the hammers running (the pool would wait for them forever)
                stop.set()
            for f in futures:
                f.result()
        assert r.status_code == 200, r.text
        assert {code for _, _, code in log} == {200}, log
        assert any(sent < ended and answered > began for sent, answered, _ in log), "none in flight during the swap"
        after = c.get("/healthz").json()["bundle"]
        assert after["checksum"] != before and after["path"] == str(second)
        assert c.get("/v1/atoms/podman-machine-init-fails-on-low-disk").status_code == 200

        # A tampered bundle is refused; the good one stays.
        bad = dist / "kb-bad.duckdb"
        shutil.copyfile(second, bad)
        import duckdb

        con = duckdb.connect(str(bad))
        con.execute("UPDATE atoms SET body = body || ' (edited after export)'")
        con.close()
        for path in (bad, tmp_path / "missing.duckdb"):
            r = c.post("/admin/reload", json={"path": str(path)})
            assert r.status_code == 409
            assert r.json()["error"]["type"] == "bundle_refused"
            assert c.get("/healthz").json()["bundle"]["checksum"] == after["checksum"]
        metrics = c.get("/metrics").text
        assert 'kb_bundle_reloads_total{result="ok"} 1.0' in metrics
        assert 'kb_bundle_reloads_total{result="refused"} 2.0' in metrics


def test_watch_reloads_when_the_bundle_file_is_replaced(built, tmp_path):
    from pipeline.service.app import create_app

    ws, _, embedder = built
    ws2 = make_workspace(tmp_path / "ws2")
    dist = tmp_path / "dist"
    export_bundle(ws2, dist / "kb-1.duckdb")
    app = create_app(dist, settings_for(ws), embedder=embedder, watch=True, watch_interval=0.1)
    with Server(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz").json()["bundle"]["path"].endswith("kb-1.duckdb")
        (ws2 / "atoms" / "troubleshooting-tip" / "podman-machine-init-fails-on-low-disk.md").write_text(NEW_ATOM)
        export_bundle(ws2, dist / "kb-2.duckdb")
        deadline = time.monotonic() + 20
        while not c.get("/healthz").json()["bundle"]["path"].endswith("kb-2.duckdb"):
            assert time.monotonic() < deadline, "the watcher did not pick up the new bundle"
            time.sleep(0.1)
        assert c.get("/v1/atoms/podman-machine-init-fails-on-low-disk").status_code == 200


def test_bad_bundle_at_startup_is_a_bundle_error(built, tmp_path):
    from pipeline.errors import BundleError

    bad = tmp_path / "kb-bad.duckdb"
    bad.write_bytes(b"not a duckdb file")
    with pytest.raises(BundleError):
        make_app(built, source=bad)
    with pytest.raises(BundleError, match="No bundle"):
        make_app(built, source=tmp_path / "empty-dir-does-not-exist")


# ---------------------------------------------------------------------------------------------
# with an LLM: grounded answers, refusals


@pytest.fixture(scope="module")
def llm_server(built):
    with OpenAIServer() as fake:
        app = make_app(built, **{"llm.base_url": fake.base_url, "llm.model": "fake-model", "llm.http_retries": 0})
        with Server(app) as srv:
            yield srv, fake


def test_llm_answer_is_grounded_in_retrieved_atoms(llm_server):
    srv, fake = llm_server
    fake.push(text(f"Read the initial password from the argocd-initial-admin-secret secret [{REAL_ATOM}]."))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        body = c.post("/v1/ask", json={"question": REAL_QUESTION}).json()
    assert body["uncertain"] is False
    assert body["answer"].startswith("Read the initial password")
    assert [x["atom_id"] for x in body["citations"]] == [REAL_ATOM]
    prompt = json.dumps(fake.requests[-1]["messages"])
    assert f"[{REAL_ATOM}]" in prompt and "argocd-initial-admin-secret" in prompt  # the atom's text was given
    assert REAL_QUESTION in prompt


def test_llm_answer_citing_nothing_retrieved_is_refused(llm_server):
    srv, fake = llm_server
    fake.push(text("Just reinstall Argo CD; that always works."))
    fake.push(text("Reinstall everything [some-atom-it-made-up]."))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for _ in range(2):
            body = c.post("/v1/ask", json={"question": REAL_QUESTION}).json()
            assert body["uncertain"] is True
            assert body["citations"] == []
            assert body["answer"].startswith("I don't know")
        metrics = c.get("/metrics").text
    assert 'kb_answers_total{mode="llm",uncertain="true"}' in metrics


def test_llm_failure_is_a_clear_502(llm_server):
    from tests.fakes.openai_server import status

    srv, fake = llm_server
    fake.push(status(500, "model crashed"))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/v1/ask", json={"question": REAL_QUESTION})
    assert r.status_code == 502
    assert r.json()["error"]["message"].startswith("The LLM failed")


def test_citation_sources_the_answer_rests_on_come_first():
    from pipeline.answer.citations import rank_sources

    sources = [
        {"document": "faq.md", "heading": "I've deleted/corrupted my repo and can't delete my app.", "line": 3},
        {"document": "faq.md", "heading": "I forgot the admin password, how do I reset it?", "line": 48},
    ]
    ranked = rank_sources(sources, "I forgot the admin password, how do I reset it? For Argo CD v1.9 ...")
    assert [s["line"] for s in ranked] == [48, 3]
    assert rank_sources(sources, "") == sources


HOSTILE_BODIES = [
    (b'{"query": "\\ud800"}', "invalid_unicode"),
    (b'{"query": "a\\udfff b"}', "invalid_unicode"),
    (b'{"query": "nul \\u0000 here"}', "invalid_text"),
    (b'{"query": "nul \x00 raw"}', "invalid_text"),
    (b'{"query": "caf\xe9"}', "invalid_encoding"),
    (b'{"query": "x", "k": ' + b"9" * 5000 + b"}", "invalid_json"),
    (b'{"query": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json"),
]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask", "/v1/chat/completions"])
@pytest.mark.parametrize(("body", "kind"), HOSTILE_BODIES, ids=[k + str(i) for i, (_, k) in enumerate(HOSTILE_BODIES)])
def test_hostile_json_bodies_are_specific_400s_never_500(client, path, body, kind):
    if path.endswith("completions"):
        body = body.replace(b'"query"', b'"messages": [{"role": "user", "content": "hi"}], "model": "kb", "x"', 1)
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["type"] == kind


def test_metric_labels_stay_bounded_under_random_methods(client):
    """10,000 requests with random methods and paths (the issue's figure): no 5xx, alive, /metrics bounded."""
    import random

    rng = random.Random(17)
    size_before = len(client.get("/metrics").text)
    routes = ["/healthz", "/v1/search", "/v1/ask", "/v1/models", "/metrics", "/v1/atoms/x"]
    for i in range(10_000):
        method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 12)))
        path = rng.choice(routes) if i % 3 == 0 else f"/random/{i}/{rng.random()}"
        r = client.request(method, path)
        assert r.status_code < 500, (method, path, r.status_code)
    text = client.get("/metrics").text
    assert 'method="other"' in text
    assert not any(f"/random/{i}/" in text for i in range(0, 10_000, 7))
    assert len(text) < max(200_000, 2 * size_before)
    assert client.get("/healthz").status_code == 200
