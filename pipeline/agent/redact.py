"""Redaction: secrets, tokens, emails and IP addresses never reach the LLM.

Applied to every message of every request a loop sends (the system prompt, the user's words,
tool outputs), so free text a person pasted is covered as well as log lines. Rules are regexes (the one set in
``pipeline.redaction``, shared with the gap log); ``agent.redact_patterns`` adds more. A named group ``keep`` is kept (``password=`` stays, its
value goes), so the model still sees *that* a secret was there. The values of the secrets kb
itself holds (the LLM and serve keys in their env variables) are replaced literally as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings, secret
from pipeline.errors import ConfigError
from pipeline.redaction import EMAIL_RULE, IP_RULES, SECRET_RULES, apply, compile_rules, rule_spec

__all__ = ["EMAIL_RULE", "IP_RULES", "SECRET_RULES", "Redactor"]


@dataclass
class Redactor:
    rules: list[tuple[str, re.Pattern[str]]]
    literals: list[str] = field(default_factory=list)
    count: int = 0  # redactions made so far (all texts)

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        cfg = settings.agent
        if not cfg.redact:
            return cls([])
        rules = compile_rules(rule_spec(emails=cfg.redact_emails, ips=cfg.redact_ips))
        for p in cfg.redact_patterns:
            try:
                rules.append(("custom", re.compile(p)))
            except re.error as exc:
                raise ConfigError(
                    f"agent.redact_patterns: {p!r} is not a valid regex ({exc})", "Fix the pattern in kb.yaml."
                )
        literals = [
            v for v in (secret(settings.llm.api_key_env), secret(settings.serve.api_key_env)) if v and len(v) >= 4
        ]
        return cls(rules, literals)

    def text(self, value: str) -> str:
        for lit in self.literals:
            if lit in value:
                self.count += value.count(lit)
                value = value.replace(lit, "[REDACTED:secret]")
        value, n = apply(value, self.rules)
        self.count += n
        return value

    def value(self, data: Any) -> Any:
        """Redact every string inside JSON-like data (messages, tool outputs)."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, list):
            return [self.value(v) for v in data]
        if isinstance(data, dict):
            return {k: self.value(v) for k, v in data.items()}
        return data

    def messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A redacted copy of chat messages: contents and tool-call arguments."""
        return [self.value(m) for m in messages]
