"""The LLM plug-in point: a chat model answers messages and reports what it spent."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Usage:
    """Tokens and money spent; ``requests`` counts HTTP completions, ``retries`` HTTP retries."""

    requests: int = 0
    retries: int = 0
    reasks: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.reasks += other.reasks
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost_usd += other.cost_usd

    def __str__(self) -> str:
        return (
            f"{self.requests} request(s), {self.tokens_in} tokens in, {self.tokens_out} out, "
            f"${self.cost_usd:.4f}"
            + (f", {self.reasks} re-ask(s)" if self.reasks else "")
            + (f", {self.retries} retr{'y' if self.retries == 1 else 'ies'}" if self.retries else "")
        )


@dataclass
class ChatResult:
    text: str
    tokens_in: int
    tokens_out: int


class SharedBudget(Protocol):
    """A budget several processes spend from (a Celery run's ``distill.max_cost_usd``).

    ``reserve`` holds the next request's upper-bound cost or raises BudgetExceededError;
    ``release`` gives it back when the request failed. Whoever listens to the client's requests
    (``on_request``) settles the real cost, under a name that counts it once."""

    def reserve(self, estimate: float) -> None: ...

    def release(self) -> None: ...


@dataclass
class RequestRecord:
    """One HTTP completion (for the run log): what it cost and whether it was a re-ask."""

    tokens_in: int
    tokens_out: int
    cost_usd: float
    reask: bool
    retries: int
    status: str = "ok"


class ChatModel(ABC):
    """What answering and distillation need of an LLM backend (``LlmClient`` is the built-in one)."""

    @abstractmethod
    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None) -> ChatResult:
        """One completion of ``messages``: its text and token counts."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release connections."""
