"""Redaction: secrets, tokens, emails and IP addresses never reach the LLM.

Applied to every message of every request a loop sends (the system prompt, the user's words,
tool outputs), so free text a person pasted is covered as well as log lines. Rules are regexes;
``agent.redact_patterns`` adds more. A named group ``keep`` is kept (``password=`` stays, its
value goes), so the model still sees *that* a secret was there. The values of the secrets kb
itself holds (the LLM and serve keys in their env variables) are replaced literally as well.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings, secret
from pipeline.errors import ConfigError

# (name, pattern): the match (minus a ``keep`` group) becomes ``[REDACTED:<name>]``.
SECRET_RULES: list[tuple[str, str]] = [
    ("private-key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("token", r"(?P<keep>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    ("token", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    ("token", r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"),  # OpenAI-style and similar API keys
    ("token", r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),  # GitHub
    ("token", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),  # GitLab
    ("token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack
    ("token", r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    ("secret", r"(?P<keep>://[^/\s:@]+:)[^@\s/]+(?=@)"),  # user:password@ in URLs
    (
        "secret",
        r"(?i)(?P<keep>\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth|credential)s?"
        r"[\w.-]*[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED)[^\s\"',;}]{3,}",
    ),
]
EMAIL_RULE = ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
IP_RULES = [
    ("ip", r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b"),
    ("ip", r"(?i)(?<![\w:])(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}(?![\w:])"),
    # compressed IPv6 (fe80::1, 2001:db8::8a2e:370:7334, ::ffff:10.0.0.1 is caught by the IPv4 rule): it holds
    # "::" and a digit, so C++/Rust paths (std::vec, Vec::new) stay
    (
        "ip",
        r"(?i)(?<![\w:])(?=[0-9a-f:]*\d)(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?::"
        r"(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?(?![\w:])",
    ),
]


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
        spec = list(SECRET_RULES)
        if cfg.redact_emails:
            spec.append(EMAIL_RULE)
        if cfg.redact_ips:
            spec += IP_RULES
        rules = [(name, re.compile(p)) for name, p in spec]
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
        for name, rx in self.rules:
            value = rx.sub(functools.partial(self._sub_named, name), value)
        return value

    def _sub_named(self, name: str, m: re.Match[str]) -> str:
        return self._sub(m, name)

    def _sub(self, m: re.Match[str], name: str) -> str:
        self.count += 1
        keep = m.groupdict().get("keep") or ""
        return f"{keep}[REDACTED:{name}]"

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
