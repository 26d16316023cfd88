"""The one set of redaction rules: secrets, tokens, e-mail and IP addresses (the ops chat and the gap log).

Low in the layers (it imports nothing of kb) so both ``pipeline.agent.redact`` (what reaches the
LLM) and ``pipeline.index.gaps`` (what the gap log keeps of a user's question) use the same rules.
A named group ``keep`` is kept (``password=`` stays, its value goes); the match becomes
``[REDACTED:<name>]``.
"""

from __future__ import annotations

import functools
import re

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


def rule_spec(*, emails: bool = True, ips: bool = True) -> list[tuple[str, str]]:
    """The rules in the order they apply: secrets first (a URL's password before its host's e-mail look)."""
    return list(SECRET_RULES) + ([EMAIL_RULE] if emails else []) + (IP_RULES if ips else [])


def compile_rules(spec: list[tuple[str, str]]) -> list[tuple[str, re.Pattern[str]]]:
    return [(name, re.compile(p)) for name, p in spec]


DEFAULT_RULES = compile_rules(rule_spec())


def apply(text: str, rules: list[tuple[str, re.Pattern[str]]] | None = None) -> tuple[str, int]:
    """``text`` with every rule's matches replaced, and how many were."""
    total = 0
    for name, rx in DEFAULT_RULES if rules is None else rules:
        text, n = rx.subn(functools.partial(_replace, name), text)
        total += n
    return text, total


def _replace(name: str, m: re.Match[str]) -> str:
    return f"{m.groupdict().get('keep') or ''}[REDACTED:{name}]"


_URL_PASSWORD = re.compile(r"://([^/@:\s]*):[^@/\s]*@")


def redact_url(url: str) -> str:
    """``url`` as it may be shown (messages, labels, logs): its password as ``***``."""
    return _URL_PASSWORD.sub(r"://\1:***@", url)
