"""LLM backends: the chat model interface, the OpenAI-compatible client (instructor), token counting."""

from pipeline.backends.llm.base import ChatModel, ChatResult, RequestRecord, SharedBudget, Usage
from pipeline.backends.llm.client import ExtractionError, LlmClient, configured, make_client, price

__all__ = [
    "ChatModel",
    "ChatResult",
    "ExtractionError",
    "LlmClient",
    "RequestRecord",
    "SharedBudget",
    "Usage",
    "configured",
    "make_client",
    "price",
]
