"""The MCP server through the official SDK client: in memory, as a real `kb mcp` stdio subprocess,
and as stateless streamable HTTP at /mcp inside `kb serve` (with and without the bearer key)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp", reason="needs the 'mcp' extra: pip install 'kb-atoms[mcp]'")

from tests.mcp_support import built_once, tool_context  # noqa: E402

QUESTION = "How do I restore a SQLite database after a node fails?"
RESTORE = "litestream-point-in-time-restore"
INTERVIEW = "shipit-59-postgres-vs-sqlite-litestream"
CASES = {
    "search": {"query": "restore a database from a snapshot", "k": 3},
    "get_atom": {"atom_id": RESTORE},
    "ask": {"question": QUESTION},
    "get_source": {"atom_id": RESTORE},
    "find_error": {
        "message": "Error: pinging container registry 10.1.2.3:5000: http: server gave HTTP response to HTTPS client"
    },
    "list_facets": {},
}


def _server():
    from pipeline.service.mcp_server import build_server, fixed_contexts

    return build_server(fixed_contexts(tool_context()))


def run(coro_fn):
    return anyio.run(coro_fn)


def test_every_tool_in_memory_matches_its_output_schema():
    import jsonschema
    from mcp import Client

    async def main():
        async with Client(_server()) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(CASES) <= set(tools)
            out = {}
            for name, args in CASES.items():
                t = tools[name]
                assert t.annotations.read_only_hint is True and t.annotations.destructive_hint is False
                assert t.output_schema and t.input_schema["type"] == "object"
                result = await client.call_tool(name, args)
                assert not result.is_error, result.content
                jsonschema.validate(result.structured_content, t.output_schema)
                out[name] = result.structured_content
            return out

    out = run(main)
    assert out["search"]["results"][0]["atom_id"] == RESTORE
    assert out["get_atom"]["resolution"][0].startswith("Fetch the latest snapshot")
    cite = out["ask"]["citations"][0]
    assert cite["atom_id"] == RESTORE and out["ask"]["uncertain"] is False and out["ask"]["drafts"] == [RESTORE]
    src = cite["sources"][0]
    assert (src["interview"], src["speaker"], src["start"]) == (INTERVIEW, "Ben Johnson", 1057.44)
    source = out["get_source"]
    assert source["kind"] == "interview" and source["timestamp"] == "00:17:37-00:18:58"  # floored, as everywhere
    cited = [s for s in source["segments"] if s["cited"]]
    assert [s["id"] for s in cited] == [29] and "grab the latest snapshot" in cited[0]["text"]
    assert "Ben Johnson (expert)" in source["excerpt"] and len(source["segments"]) == 3  # one of context each side
    assert out["find_error"]["matches"][0]["atom_id"] == "podman-http-server-gave-http-response-to-https-client"
    assert out["find_error"]["matches"][0]["resolution"]
    assert out["list_facets"]["types"]["error"] == 8 and out["list_facets"]["interviews"][INTERVIEW] == 3


def test_unknown_filter_values_and_ids_are_tool_errors_naming_close_matches():
    from mcp import Client

    async def main():
        async with Client(_server()) as client:
            bad_type = await client.call_tool("search", {"query": "sync", "type": ["eror"]})
            bad_tag = await client.call_tool("search", {"query": "sync", "tag": ["argo"]})
            bad_atom = await client.call_tool("get_atom", {"atom_id": "litestream-restore"})
            bad_arg = await client.call_tool("search", {"query": "sync", "kind": "error"})
            return bad_type, bad_tag, bad_atom, bad_arg

    bad_type, bad_tag, bad_atom, bad_arg = run(main)
    assert (
        bad_type.is_error
        and "unknown type 'eror'" in bad_type.content[0].text
        and "'error'" in bad_type.content[0].text
    )
    assert bad_tag.is_error and "'argocd'" in bad_tag.content[0].text
    assert bad_atom.is_error and RESTORE in bad_atom.content[0].text
    assert bad_arg.is_error and "kind" in bad_arg.content[0].text


def test_resources():
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    async def main():
        async with Client(_server()) as client:
            templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
            static = {str(r.uri) for r in (await client.list_resources()).resources}
            atom = await client.read_resource(f"kb://atoms/{RESTORE}")
            manifest = await client.read_resource("kb://bundle/manifest")
            transcript = await client.read_resource(f"kb://interviews/{INTERVIEW}/transcript")
            with pytest.raises(MCPError, match="did you mean"):
                await client.read_resource("kb://atoms/litestream-restor")
            return templates, static, atom, manifest, transcript

    templates, static, atom, manifest, transcript = run(main)
    assert templates == {"kb://atoms/{atom_id}", "kb://interviews/{interview_id}/transcript"}
    assert static == {"kb://bundle/manifest"}
    assert json.loads(atom.contents[0].text)["id"] == RESTORE
    assert json.loads(manifest.contents[0].text)["bundle_schema_version"] == 2
    text = transcript.contents[0].text
    assert "**[00:17:37] Ben Johnson (expert):** That is what the new system is doing." in text


def test_kb_mcp_stdio_subprocess():
    from mcp import Client, StdioServerParameters

    ws, bundle = built_once()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]), HF_HUB_OFFLINE="1", OPENBLAS_NUM_THREADS="1")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "pipeline", "--workspace", str(ws), "mcp"], env=env, cwd=str(ws)
    )

    async def main():
        async with Client(params, read_timeout_seconds=120) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("ask", {"question": QUESTION})
            return names, result

    names, result = run(main)
    assert set(CASES) <= names
    assert not result.is_error and result.structured_content["citations"][0]["atom_id"] == RESTORE


def test_kb_mcp_config_prints_the_client_setup(kb):
    ws, _ = built_once()
    claude = kb("--workspace", ws, "mcp", "config", "--client", "claude")
    assert claude.exit_code == 0, claude.stderr
    entry = json.loads(claude.stdout)["mcpServers"]["kb"]
    assert entry["args"][-1] == "mcp" and str(ws) in entry["args"]
    cursor = kb("mcp", "config", "--client", "cursor", "--url", "http://127.0.0.1:8000/mcp")
    assert json.loads(cursor.stdout) == {"mcpServers": {"kb": {"url": "http://127.0.0.1:8000/mcp"}}}
    assert kb("mcp", "config", "--client", "vim").exit_code == 2


# ---------------------------------------------------------------------------------------------
# over HTTP inside kb serve


@pytest.fixture(scope="module")
def http_server():
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from pipeline.config import Settings
    from pipeline.service.app import create_app
    from tests.bundle_support import embedder
    from tests.service.test_service import Server

    ws, bundle = built_once()
    os.environ["KB_TEST_MCP_KEY"] = "s3cret-key"
    try:
        settings = Settings.load(ws, **{"serve.api_key_env": "KB_TEST_MCP_KEY"})
        app = create_app(bundle, settings, embedder=embedder(), mcp=True)
    finally:
        pass
    with Server(app) as srv:
        yield srv
    os.environ.pop("KB_TEST_MCP_KEY", None)


def _client(url: str, token: str | None):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=60)))


def test_http_mcp_needs_the_bearer_key(http_server):
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    r = httpx.post(f"{http_server.url}/mcp", json=body, headers={"accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and "bearer" in r.json()["error"]["message"].lower()
    r = httpx.post(
        f"{http_server.url}/mcp",
        json=body,
        headers={"accept": "application/json, text/event-stream", "authorization": "Bearer wrong"},
    )
    assert r.status_code == 401


def test_http_mcp_ask_has_the_same_citations_as_v1_ask(http_server):
    import httpx

    async def main():
        async with _client(f"{http_server.url}/mcp", "s3cret-key") as client:
            return await client.call_tool("ask", {"question": QUESTION})

    result = run(main)
    assert not result.is_error, result.content
    r = httpx.post(
        f"{http_server.url}/v1/ask", json={"question": QUESTION}, headers={"authorization": "Bearer s3cret-key"}
    )
    assert r.status_code == 200

    def shape(citations):  # /v1/ask may add fields (e.g. site links); the atoms and their sources must agree
        return [(c["atom_id"], c["title"], c["sources"]) for c in citations]

    assert shape(result.structured_content["citations"]) == shape(r.json()["citations"])
    assert result.structured_content["answer"] == r.json()["answer"]
    metrics = httpx.get(f"{http_server.url}/metrics", headers={"authorization": "Bearer s3cret-key"}).text
    assert 'kb_tool_calls_total{result="ok",tool="ask",transport="mcp"} 1.0' in metrics


def test_kb_tools_list_and_call(kb):
    ws, _ = built_once()
    listed = kb("tools", "list")
    assert listed.exit_code == 0
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert set(CASES) <= set(names)
    spec = json.loads(kb("tools", "list", "--format", "openai").stdout)
    assert {s["function"]["name"] for s in spec} >= set(CASES)
    called = kb("--workspace", ws, "tools", "call", "get_source", "--json", json.dumps({"atom_id": RESTORE}))
    assert called.exit_code == 0, called.stderr
    assert json.loads(called.stdout)["speaker"] == "Ben Johnson"
    bad = kb("--workspace", ws, "tools", "call", "search", "--json", '{"query": "x", "status": ["validatd"]}')
    assert bad.exit_code == 1 and "unknown status 'validatd'" in bad.stderr and "'draft'" in bad.stderr
    assert kb("tools", "call", "serch").exit_code == 1
    assert kb("--workspace", ws, "tools", "call", "search", "--json", "{oops").exit_code == 1
