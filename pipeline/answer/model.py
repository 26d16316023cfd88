"""What an answer is, and what answering needs of a bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.answer.evidence import DEFAULT_UNCERTAIN_BELOW

IDK = "I don't know: the knowledge base has no answer to this question."


class BundleLike(Protocol):  # what answering needs of pipeline.index.bundle.Bundle
    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Any]: ...
    def atom(self, atom_id: str) -> dict | None: ...


@dataclass
class Answer:
    answer: str
    uncertain: bool
    citations: list[dict[str, Any]] = field(default_factory=list)
    evidence: float = 0.0  # cosine of the question vs the best passage
    threshold: float = DEFAULT_UNCERTAIN_BELOW
    mode: str = "extractive"  # extractive | llm
    reason: str = ""  # why uncertain, for logs and --format json
    tokens_in: int = 0
    tokens_out: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The public shape of ``POST /v1/ask``."""
        return {"answer": self.answer, "uncertain": self.uncertain, "citations": self.citations}
