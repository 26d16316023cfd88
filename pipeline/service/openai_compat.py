"""``POST /v1/chat/completions`` in the OpenAI API's shape (plain and streaming SSE).

Any OpenAI client can talk to kb: the last user message is the question and the messages before
it are the conversation (follow-ups are answered in its context, see ``pipeline.answer``). The
reply's content starts with "Answering: <the question answered>", then the cited answer and its
sources; the response carries extra fields as ``/v1/ask`` has them: ``citations``, ``uncertain``,
``suggestions`` (closest atoms of an uncertain answer, never cited) and ``answered_question``.
Streaming sends the same text in chunks; the last content chunk carries the extra fields. The answer is computed (and its
citations checked) before the first byte is streamed: nothing unchecked reaches the client.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from pipeline.answer import citations_text
from pipeline.service.core import ApiError, jsonable

MODEL_ID = "kb"
AGENT_MODELS = ("kb-ops", "kb-agent")  # bounded tool loops (pipeline.agent); see service/agent_chat.py


class ContentPart(BaseModel):
    """One part of a message's content (``{"type": "text", "text": ...}``; image parts are ignored)."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a part of type 'text' needs a string 'text'")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ... are accepted and ignored
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False  # "yes" or 1 is a client bug: refuse it rather than guess
    stream_options: dict[str, Any] | None = None
    n: int = 1


def _text(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text or "" for part in content if part.type == "text")


def reply_text(result: Any) -> str:
    asked = getattr(result, "answered_question", None)
    text = f"Answering: {asked}\n\n{result.answer}" if asked else result.answer
    if result.citations and not result.uncertain:
        text += "\n\nSources:\n" + citations_text(result.citations)
    return text


def _usage(question: str, text: str, result: Any) -> dict[str, int]:
    # Extractive answers use no model tokens; report words so clients that sum usage get numbers.
    prompt = result.tokens_in or len(question.split())
    completion = result.tokens_out or len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def add_chat_routes(app: Any, service: Any) -> None:
    from fastapi.responses import StreamingResponse

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        ids = (MODEL_ID, *AGENT_MODELS)
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "kb"} for i in ids]}

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest) -> Any:
        if req.n != 1:
            raise ApiError(400, "Only n=1 is supported.", "invalid_request_error")
        last = max((i for i, m in enumerate(req.messages) if m.role == "user"), default=None)
        if last is None or not _text(req.messages[last].content).strip():
            raise ApiError(422, "'messages' needs a user message with the question.", "invalid_request_error")
        question = _text(req.messages[last].content)
        history = [m.model_dump(exclude_none=True) for m in req.messages[:last] if m.role in ("user", "assistant")]
        agent_extra: dict[str, Any] = {}
        if req.model in AGENT_MODELS:
            from pipeline.service.agent_chat import agent_reply

            result, agent_extra = agent_reply(service, req.model, question, req.model_extra or {})
        else:
            result = service.ask(question, history=history)
        text = reply_text(result)
        extra = {
            "citations": jsonable(result.citations),
            "uncertain": result.uncertain,
            "suggestions": jsonable(getattr(result, "suggestions", [])),
            "answered_question": getattr(result, "answered_question", question),
            **agent_extra,
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        usage = _usage(question, text, result)
        if not req.stream:
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": req.model or MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
                **extra,
            }
        include_usage = bool((req.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            _stream(completion_id, created, req.model or MODEL_ID, text, extra, usage if include_usage else None),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )


def _stream(cid: str, created: int, model: str, text: str, extra: dict, usage: dict | None):
    def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **more,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(text):
        yield chunk({"content": piece})
    yield chunk({}, "stop", **extra)
    if usage is not None:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


def _pieces(text: str, words: int = 8):
    """Split into chunks of a few words, keeping every character (joined back, they are ``text``)."""
    start, count = 0, 0
    for i, ch in enumerate(text):
        if ch == " ":
            count += 1
            if count == words:
                yield text[start : i + 1]
                start, count = i + 1, 0
    if start < len(text):
        yield text[start:]
