"""Redaction before anything reaches an LLM: IP addresses in every written form (the agent tests cover the rest)."""

from __future__ import annotations

import pytest

from pipeline.agent.redact import Redactor
from pipeline.config import Settings


@pytest.mark.parametrize(
    "text",
    ["ping fe80::1 failed", "addr 2001:db8::8a2e:370:7334 up", "[2001:db8::1]:8080", "::1", "10.96.0.10:53",
     "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
)  # fmt: skip
def test_ip_addresses_are_redacted_full_and_compressed(text):
    out = Redactor.from_settings(Settings()).text(text)
    assert "[REDACTED:ip]" in out and not any(part in out for part in ("fe80", "db8", "10.96"))


@pytest.mark.parametrize("text", ["std::vec and Vec::new", "at 10:30:45 ok", "Error::Io(42)", "a::b"])
def test_code_paths_and_times_are_not_ips(text):
    assert Redactor.from_settings(Settings()).text(text) == text
