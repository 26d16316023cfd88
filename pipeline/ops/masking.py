"""Masking of the variable parts of a log line: numbers, ids, hashes, paths, addresses, times.

Masked values become ``<*>`` so that two lines that differ only in them share one template.
One rule does most of the work: a token that contains a digit is a value, not a word (an id, a
count, a port, a version, a hash, an IP, a timestamp). URLs, e-mails and paths are masked as a
whole first (they may hold no digit), and a written-out date ("Fri Jul  1 07:57:30 2005") is
one value, not words. Each pattern is tried only when a cheap test says it can match: masking
is most of the cost of mining.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PATH = re.compile(r"(?<![\w])(?:~|\.{1,2})?(?:/[\w.@%+=~-]+){2,}/?")
_VALUE_TOKEN = re.compile(r"\S*(?:\d|<\*>)\S*")
_DATE_WORDS = frozenset(
    "Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April June "
    "July August September October November December".split()
)
_DATE_HINT = re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)")
# for display and for matching messages against atoms: also the single-token values, by kind
_DISPLAY = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), WILDCARD),
    (_URL, WILDCARD),
    (_EMAIL, WILDCARD),
    (re.compile(r"(?<![\w/.])(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), WILDCARD),
    (_PATH, WILDCARD),
    (re.compile(r"\b(?:sha256:)?[0-9a-fA-F]{12,}\b"), WILDCARD),
    (re.compile(r"(?<![A-Za-z])[-+]?\d+(?:[.:,]\d+)*"), WILDCARD),
]


_VALUES = [_DISPLAY[0], _DISPLAY[3], _DISPLAY[5], _DISPLAY[6]]


def mask_values(text: str) -> str:
    """Only the values (ids, IPs, hashes, numbers): URLs and paths keep their words, for matching."""
    for pattern, repl in _VALUES:
        text = pattern.sub(repl, text)
    return text


def mask(text: str) -> str:
    """The text with its values replaced by ``<*>``, words and punctuation kept (for matching)."""
    for pattern, repl in _DISPLAY:
        text = pattern.sub(repl, text)
    return text


def tokens(text: str) -> list[str]:
    """Masked tokens of a line: whitespace-separated, every value token ``<*>``."""
    if "://" in text:
        text = _URL.sub(WILDCARD, text)
    if "@" in text:
        text = _EMAIL.sub(WILDCARD, text)
    if "/" in text:
        text = _PATH.sub(WILDCARD, text)
    toks = _VALUE_TOKEN.sub(WILDCARD, text).split()
    if _DATE_HINT.search(text):
        n = len(toks)
        for i in range(n - 1, -1, -1):  # right to left: "Fri Jul 1" masks Jul, then Fri
            if toks[i].rstrip(",.") in _DATE_WORDS and (
                (i + 1 < n and toks[i + 1] == WILDCARD) or (i > 0 and toks[i - 1] == WILDCARD)
            ):
                toks[i] = WILDCARD
    return toks
