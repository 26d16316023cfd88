"""The agents against the scripted fake OpenAI server: tool calls executed, budgets enforced,
redaction (a secret never reaches any request body), the router (one case per intent, one that
asks back), and every final message carrying citations or uncertain."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.config import Settings
from pipeline.tools import registry
from tests.fakes.openai_server import Answer, OpenAIServer, _completion, text, tool_call
from tests.mcp_support import built_once, tool_context

pytest.importorskip("instructor")

SECRET = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e"
EMAIL = "oncall.engineer@example.org"
PODMAN = "podman-http-server-gave-http-response-to-https-client"
RESTORE = "litestream-point-in-time-restore"
PASTE = (
    f"podman push fails: Error: pinging container registry 10.20.30.40:5000: http: server gave HTTP response to "
    f"HTTPS client (REGISTRY_TOKEN={SECRET}, ask {EMAIL})"
)


def calls(*pairs: tuple[str, dict]) -> Answer:
    """One assistant message with several tool calls."""
    tool_calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a) in enumerate(pairs)
    ]
    return Answer(
        body=_completion({"role": "assistant", "content": None, "tool_calls": tool_calls}, "tool_calls", None)
    )


@pytest.fixture
def fake():
    with OpenAIServer() as server:
        yield server


def ctx_for(server: OpenAIServer, **agent):
    ws, _ = built_once()
    flags = {"llm.base_url": server.base_url, "llm.http_retries": 0, "llm.max_retries": 0}
    flags.update({f"agent.{k}": v for k, v in agent.items()})
    base = tool_context()
    return dataclasses.replace(base, settings=Settings.load(ws, **flags), extras=dict(base.extras))


def bodies(server: OpenAIServer) -> str:
    return json.dumps(server.requests)


def assert_grounded(answer) -> None:
    assert answer.citations or answer.log_citations or answer.uncertain


# ---------------------------------------------------------------------------------------------
# the loop (kb-ops specialist)


def test_ops_loop_runs_tools_redacts_and_cites(fake):
    from pipeline.agent import ops_ask

    fake.push(
        calls(("find_error", {"message": PASTE}), ("get_atom", {"atom_id": PODMAN})),
        text(f"The registry speaks plain HTTP; turn off TLS verification for it [{PODMAN}]."),
    )
    answer = ops_ask(ctx_for(fake), PASTE)
    assert [c.name for c in answer.tool_calls] == ["find_error", "get_atom"] and all(c.ok for c in answer.tool_calls)
    second = fake.requests[1]["messages"]
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert len(tool_msgs) == 2 and PODMAN in tool_msgs[0]["content"]
    assert {t["function"]["name"] for t in fake.requests[0]["tools"]} >= {"find_error", "search", "get_atom"}
    sent = bodies(fake)
    assert SECRET not in sent and EMAIL not in sent and "10.20.30.40" not in sent
    assert "[REDACTED:token]" in sent and "[REDACTED:email]" in sent and "[REDACTED:ip]" in sent
    assert answer.citations[0]["atom_id"] == PODMAN and not answer.uncertain
    assert answer.drafts == [PODMAN] and "draft" in answer.answer  # drafts are said
    assert answer.usage.requests == 2 and answer.usage.tokens_in > 0 and answer.usage.cost_usd > 0
    assert answer.context == [r["messages"] for r in fake.requests]  # --show-context shows exactly this


def test_tool_call_budget_is_enforced(fake):
    from pipeline.agent import ops_ask

    def always_search(body):
        if body.get("tools"):
            return tool_call("search", {"query": "registry https"})
        return text("I looked eight times and stopped.")

    fake.responder = always_search
    answer = ops_ask(ctx_for(fake, max_tool_calls=3, max_requests=10), "why does podman push fail?")
    assert len(answer.tool_calls) == 3
    assert len(fake.requests) == 4 and "tools" not in fake.requests[-1]
    assert "tool budget" in fake.requests[-1]["messages"][-1]["content"]
    assert answer.stopped == "tool budget" and answer.uncertain


def test_default_budget_is_eight_tool_calls_and_outputs_are_cut(fake):
    from pipeline.agent import ops_ask

    fake.responder = lambda body: (
        calls(("search", {"query": "sync"}), ("list_facets", {})) if body.get("tools") else text("Done.")
    )
    answer = ops_ask(ctx_for(fake, tool_output_tokens=60), "why is my app out of sync?")
    assert len(answer.tool_calls) == 8 and answer.stopped == "tool budget"
    tool_texts = [m["content"] for r in fake.requests for m in r["messages"] if m["role"] == "tool"]
    assert any("[output truncated: 240 of" in t for t in tool_texts)
    assert all(len(t) < 240 + 200 for t in tool_texts)
    assert answer.uncertain  # cites nothing and stopped at its budget


def test_unknown_tool_and_bad_arguments_are_told_to_the_model(fake):
    from pipeline.agent import ops_ask

    fake.push(
        calls(("apply_plan", {"id": "x"}), ("search", {"query": "sync", "type": ["eror"]})),
        text("I found nothing I can cite."),
    )
    answer = ops_ask(ctx_for(fake), "apply the plan")
    msgs = [m["content"] for m in fake.requests[1]["messages"] if m["role"] == "tool"]
    assert "no tool 'apply_plan'" in msgs[0] and "did you mean 'error'" in msgs[1]
    assert answer.uncertain and not answer.citations


def test_invented_citation_is_uncertain(fake):
    from pipeline.agent import ops_ask

    fake.push(calls(("find_error", {"message": PASTE})), text(f"See [{PODMAN}] and [made-up-atom]."))
    answer = ops_ask(ctx_for(fake), PASTE)
    assert [c["atom_id"] for c in answer.citations] == [PODMAN]
    assert answer.uncertain and "made-up-atom" in answer.reason


def test_uncovered_error_is_uncertain(fake):
    from pipeline.agent import ops_ask

    msg = "FATAL: replication slot kb_slot_7 does not exist on the standby"
    fake.push(calls(("find_error", {"message": msg})), text("No atom covers this replication error."))
    answer = ops_ask(ctx_for(fake), f"why did replication stop? {msg}")
    assert answer.uncertain and "covered by no atom" in answer.reason


def test_cost_budget_stops_the_loop(fake):
    from pipeline.agent import ops_ask

    fake.responder = lambda body: tool_call("search", {"query": "sync"})
    answer = ops_ask(ctx_for(fake, max_cost_usd=0.0005), "why did the sync fail?")
    assert answer.stopped == "cost budget" and answer.uncertain
    assert answer.usage.cost_usd <= 0.0005


# ---------------------------------------------------------------------------------------------
# the router


def route(intent: str, missing: list[str] | None = None, system: str | None = None) -> Answer:
    return tool_call("Route", {"intent": intent, "missing": missing or [], "system": system, "reason": "scripted"})


@pytest.fixture
def proposal_tools(tmp_path):
    """A setup and a change tool (effect proposal) registered for the test only."""
    from pydantic import BaseModel

    class In(BaseModel):
        request: str

    class Out(BaseModel):
        id: str
        path: str
        values: list[dict]

    def make(kind: str):
        def fn(ctx, args):
            folder = tmp_path / ("proposals" if kind == "setup" else "plans") / f"{kind}-1"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "plan.json").write_text(json.dumps({"request": args.request}), encoding="utf-8")
            return Out(id=f"{kind}-1", path=str(folder), values=[{"pointer": "/replicas", "atom_id": RESTORE}])

        fn.__doc__ = f"Write a {kind} proposal."
        return fn

    registry.tool("test_setup_new", input=In, output=Out, effect="proposal", group="setup")(make("setup"))
    registry.tool("test_change_plan", input=In, output=Out, effect="proposal", group="change")(make("change"))
    yield tmp_path
    for name in ("test_setup_new", "test_change_plan"):
        registry._REGISTRY.pop(name, None)


def test_router_troubleshoot(fake):
    from pipeline.agent import agent

    fake.push(
        route("troubleshoot", system="kb"),
        calls(("find_error", {"message": PASTE})),
        text(f"Disable TLS verification for the local registry [{PODMAN}]."),
    )
    answer = agent(ctx_for(fake), PASTE)
    assert answer.intent == "troubleshoot" and answer.citations[0]["atom_id"] == PODMAN
    assert fake.requests[0]["tool_choice"]["function"]["name"] == "Route"  # one structured call
    assert SECRET not in bodies(fake) and EMAIL not in bodies(fake)
    assert len(answer.context) == 3 and answer.usage.requests == 3
    assert_grounded(answer)


def test_router_ask(fake):
    from pipeline.agent import agent

    fake.push(route("ask"), text(f"Grab the latest snapshot and replay the WAL [{RESTORE}]."))
    answer = agent(ctx_for(fake), f"How do I restore a SQLite database after a node fails? (mail {EMAIL})")
    assert answer.intent == "ask" and answer.citations[0]["atom_id"] == RESTORE and not answer.uncertain
    assert answer.citations[0]["sources"][0]["speaker"] == "Ben Johnson"
    assert EMAIL not in bodies(fake) and len(fake.requests) == 2
    assert_grounded(answer)


def test_router_setup_stops_at_the_proposal(fake, proposal_tools):
    from pipeline.agent import agent

    fake.push(
        route("setup"),
        calls(("search", {"query": "restore sqlite"})),
        calls(("test_setup_new", {"request": "a replicated SQLite"})),
        text("never requested: the loop stops at the artifact"),
    )
    answer = agent(ctx_for(fake), "Set up a replicated SQLite with point-in-time restores for our staging app")
    assert answer.intent == "setup" and answer.artifact["id"] == "setup-1"
    assert len(fake.requests) == 3 and "nothing was applied" in answer.answer
    assert (proposal_tools / "proposals" / "setup-1" / "plan.json").is_file()
    assert answer.citations[0]["atom_id"] == RESTORE and not answer.uncertain
    assert_grounded(answer)


def test_router_migrate_stops_at_the_plan(fake, proposal_tools):
    from pipeline.agent import agent

    fake.push(route("migrate"), calls(("test_change_plan", {"request": "auto-sync for all 30 apps"})))
    answer = agent(ctx_for(fake), "Turn on automated sync for all 30 Argo CD applications in apps/")
    assert answer.intent == "migrate" and answer.artifact["path"].endswith("plans/change-1")
    assert answer.tool_calls[0].effect == "proposal"
    assert_grounded(answer)


def test_router_ambiguous_request_asks_back(fake):
    from pipeline.agent import agent

    fake.push(route("troubleshoot", missing=["Which system failed: kb itself or a system under systems/?"]))
    answer = agent(ctx_for(fake), "it broke again last night")
    assert answer.ask_back and answer.uncertain and "Which system failed" in answer.answer
    assert len(fake.requests) == 1 and not answer.tool_calls
    assert_grounded(answer)


def test_router_step_budget_applies_to_the_specialist(fake):
    from pipeline.agent import agent

    fake.push(route("troubleshoot"))
    fake.responder = lambda body: tool_call("search", {"query": "x"}) if body.get("tools") else text("stopped")
    answer = agent(ctx_for(fake, max_tool_calls=2), "why did the sync fail?")
    assert len(answer.tool_calls) == 2 and answer.stopped == "tool budget" and answer.uncertain


def test_agent_without_llm_routes_by_keywords():
    from pipeline.agent import agent

    answer = agent(tool_context(), "How do I restore a SQLite database after a node fails?")
    assert answer.intent == "ask" and answer.mode == "offline" and answer.citations[0]["atom_id"] == RESTORE
    setup = agent(tool_context(), "set up a new cluster for the staging team")
    assert setup.intent == "setup" and setup.uncertain and "kb setup new" in setup.answer


# ---------------------------------------------------------------------------------------------
# over HTTP and the CLI


def test_chat_completions_kb_ops_and_kb_agent(fake):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from pipeline.service.app import create_app
    from tests.bundle_support import embedder
    from tests.service.test_service import Server

    ws, bundle = built_once()
    settings = Settings.load(ws, **{"llm.base_url": fake.base_url, "llm.http_retries": 0, "llm.max_retries": 0})
    app = create_app(bundle, settings, embedder=embedder())
    fake.push(calls(("find_error", {"message": PASTE})), text(f"Use --tls-verify=false for it [{PODMAN}]."))
    with Server(app) as srv:
        body = {"model": "kb-ops", "messages": [{"role": "user", "content": PASTE}]}
        r = httpx.post(f"{srv.url}/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["citations"][0]["atom_id"] == PODMAN and data["uncertain"] is False
        assert data["tool_calls"][0]["name"] == "find_error" and data["drafts"] == [PODMAN]
        assert SECRET not in bodies(fake)
        fake.push(route("ask", missing=["Which application?"]))
        body = {"model": "kb-agent", "messages": [{"role": "user", "content": "is it synced?"}]}
        data = httpx.post(f"{srv.url}/v1/chat/completions", json=body, timeout=60).json()
        assert data["uncertain"] is True and data["ask_back"] == ["Which application?"]
        models = {m["id"] for m in httpx.get(f"{srv.url}/v1/models").json()["data"]}
        assert {"kb", "kb-ops", "kb-agent"} <= models
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'kb_tool_calls_total{result="ok",tool="find_error",transport="agent"} 1.0' in metrics


def test_kb_agent_show_context(fake, kb, monkeypatch):
    ws, _ = built_once()
    monkeypatch.setenv("KB_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("KB_LLM_HTTP_RETRIES", "0")
    fake.push(route("ask"), text(f"Replay the WAL after the latest snapshot [{RESTORE}]."))
    result = kb("--workspace", ws, "agent", f"How do I restore SQLite? token={SECRET}", "--show-context")
    assert result.exit_code == 0, result.stderr
    assert "--- request 1:" in result.stderr and "--- request 2:" in result.stderr
    assert SECRET not in result.stderr and "token=[REDACTED:" in result.stderr
    assert f"[{RESTORE}]" in result.stdout and "Intent: ask" in result.stdout


# ---------------------------------------------------------------------------------------------
# no tool writes a user's files


def test_no_registry_tool_writes_outside_proposals_and_plans(tmp_path):
    """Every registered tool is read or proposal; run with real arguments, none writes anywhere but
    proposals/ and plans/ (the knowledge tools write nothing at all)."""
    from tests.service.test_mcp import CASES

    ws, _ = built_once()

    def snapshot():
        return {str(p.relative_to(ws)): p.stat().st_mtime_ns for p in ws.rglob("*") if p.is_file()}

    before = snapshot()
    ctx = dataclasses.replace(tool_context(), workspace=__import__("pipeline.workspace").workspace.Workspace.at(ws))
    for t in registry.all_tools():
        assert t.effect in ("read", "proposal"), t.name
        assert "apply" not in t.name, t.name
        try:
            t.run(ctx, CASES.get(t.name, {}))
        except registry.ToolError:
            pass  # required arguments the table does not give: refused before anything ran
    changed = {p for p, m in snapshot().items() if before.get(p) != m}
    assert all(p.startswith(("proposals/", "plans/")) for p in changed), changed
