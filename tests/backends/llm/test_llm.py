"""The LLM client over real HTTP: the real openai + instructor clients against the loopback fake."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationInfo, field_validator

from pipeline.backends.llm import ExtractionError, make_client
from pipeline.config import Settings
from pipeline.errors import BackendError, BudgetExceededError, ConfigError
from tests.fakes.openai_server import OpenAIServer, slow, status, text, tool_call


class Fact(BaseModel):
    name: str
    count: int

    @field_validator("name")
    @classmethod
    def _allowed(cls, value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("allowed")
        if allowed and value not in allowed:
            raise ValueError(f"name {value!r} is not one of {allowed}")
        return value


USER = [{"role": "user", "content": "Give me the fact."}]


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


def settings(server: OpenAIServer, **extra) -> Settings:
    values = {"llm.base_url": server.base_url, "llm.backoff_s": 0.01, "llm.timeout_s": 2.0, **extra}
    return Settings.load(None, **values)


def test_extract_valid_counts_usage(server):
    server.push(
        tool_call(
            "Fact",
            {"name": "disk", "count": 3},
            usage={"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135},
        )
    )
    client = make_client(settings(server))
    fact, usage = client.extract(Fact, USER)
    assert (fact.name, fact.count) == ("disk", 3)
    assert (usage.requests, usage.tokens_in, usage.tokens_out) == (1, 120, 15)
    assert usage.cost_usd == pytest.approx(135 * 0.25 / 1e6)
    sent = server.requests[0]
    assert sent["tools"][0]["function"]["name"] == "Fact"  # instructor's TOOLS mode, over HTTP


def test_invalid_json_and_schema_violation_are_reasked_and_counted(server):
    u = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    server.push(
        tool_call("Fact", "{this is not json", usage=u),
        tool_call("Fact", {"name": "disk", "count": "many"}, usage=u),
        tool_call("Fact", {"name": "disk", "count": 2}, usage=u),
    )
    client = make_client(settings(server, **{"llm.max_retries": 3}))
    fact, usage = client.extract(Fact, USER)
    assert fact.count == 2
    assert usage.requests == 3 and usage.reasks == 2
    assert usage.tokens_in == 300 and usage.tokens_out == 30  # every attempt counted, not just the last
    reask = server.requests[2]["messages"][-1]
    assert reask["role"] == "tool" and "count" in reask["content"]


def test_validation_context_reason_is_sent_back(server):
    server.push(tool_call("Fact", {"name": "cpu", "count": 1}), tool_call("Fact", {"name": "disk", "count": 1}))
    client = make_client(settings(server))
    fact, usage = client.extract(Fact, USER, validation_context={"allowed": ["disk"]})
    assert fact.name == "disk" and usage.reasks == 1
    assert "not one of ['disk']" in server.requests[1]["messages"][-1]["content"]


def test_never_valid_raises_with_last_answer_and_usage(server):
    server.push(*[tool_call("Fact", {"name": "cpu", "count": 1}) for _ in range(3)])
    client = make_client(settings(server, **{"llm.max_retries": 2}))
    with pytest.raises(ExtractionError) as err:
        client.extract(Fact, USER, validation_context={"allowed": ["disk"]})
    assert err.value.usage.requests == 3
    assert '"cpu"' in err.value.raw
    assert "after 3 attempt(s)" in err.value.message


def test_429_with_retry_after_then_success(server):
    server.push(status(429, retry_after=0.05), status(503), tool_call("Fact", {"name": "disk", "count": 1}))
    client = make_client(settings(server))
    fact, usage = client.extract(Fact, USER)
    assert fact.name == "disk"
    assert usage.retries == 2 and usage.requests == 1
    assert len(server.requests) == 3


def test_429_forever_is_a_backend_error(server):
    server.push(*[status(429, retry_after=0) for _ in range(5)])
    client = make_client(settings(server, **{"llm.http_retries": 2}))
    with pytest.raises(BackendError, match="429"):
        client.extract(Fact, USER)
    assert len(server.requests) == 3


def test_timeout_is_retried(server):
    server.push(
        slow(1.5, tool_call("Fact", {"name": "late", "count": 1})), tool_call("Fact", {"name": "disk", "count": 1})
    )
    client = make_client(settings(server, **{"llm.timeout_s": 0.4}))
    fact, usage = client.extract(Fact, USER)
    assert fact.name == "disk" and usage.retries == 1


def test_timeout_every_time_says_how_to_fix(server):
    server.push(*[slow(1.0, text("late")) for _ in range(3)])
    client = make_client(settings(server, **{"llm.timeout_s": 0.3, "llm.http_retries": 1}))
    with pytest.raises(BackendError, match="did not answer within") as err:
        client.chat(USER)
    assert "llm.timeout_s" in err.value.hint


def test_chat_returns_text_and_tokens(server):
    server.push(text("The repo server.", usage={"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44}))
    client = make_client(settings(server))
    result = client.chat(USER, max_tokens=50)
    assert (result.text, result.tokens_in, result.tokens_out) == ("The repo server.", 40, 4)
    assert server.requests[0]["max_tokens"] == 50


def test_budget_stops_before_the_request(server):
    client = make_client(settings(server, **{"llm.price_in_per_1m": 1000.0}), budget_usd=0.001)
    with pytest.raises(BudgetExceededError, match="Stopped before exceeding"):
        client.extract(Fact, USER)
    assert server.requests == []  # nothing was sent


def test_no_endpoint_configured_names_the_fix(monkeypatch):
    monkeypatch.delenv("KB_LLM_API_KEY", raising=False)
    with pytest.raises(ConfigError) as err:
        make_client(Settings.load(None))
    assert "--backend extractive" in err.value.hint


def test_unreachable_endpoint_is_a_backend_error():
    with OpenAIServer() as srv:
        url = srv.base_url
    client = make_client(Settings.load(None, **{"llm.base_url": url, "llm.http_retries": 0, "llm.timeout_s": 1.0}))
    with pytest.raises(BackendError, match="Cannot reach"):
        client.chat(USER)


def test_streaming_fake_speaks_sse(server):
    import openai

    server.push(text("streamed answer here"))
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    chunks = client.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    parts, usage = [], None
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts) == "streamed answer here" and usage.completion_tokens > 0


def test_json_mode_for_servers_without_function_calling(server):
    server.push(text('{"name": "disk", "count": 4}'))
    client = make_client(settings(server, **{"llm.mode": "json"}))
    fact, usage = client.extract(Fact, USER)
    assert fact.count == 4 and usage.requests == 1
    assert "tools" not in server.requests[0] and server.requests[0]["response_format"]["type"] == "json_object"


def test_one_client_serves_concurrent_chats(server):
    from concurrent.futures import ThreadPoolExecutor

    server.responder = lambda body: slow(0.05, text("answer to " + body["messages"][-1]["content"]))
    client = make_client(settings(server))
    questions = [[{"role": "user", "content": f"q{i}"}] for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client.chat, questions))
    assert [r.text for r in results] == [f"answer to q{i}" for i in range(8)]
    assert all(r.tokens_in > 0 for r in results) and client.total.requests == 8
