"""One log line -> a record: its time, level and message, from JSON lines, key=value or plain text.

Formats are recognised per line, so a folder may mix them: JSON objects (``level``/``msg``/
``time`` and their usual aliases), logrus-style ``time="..." level=error msg="..."``, and plain
lines with an ISO or syslog timestamp and a level word (``ERROR``, ``ERRO[0002]``, ``E:``...).
A line with no level that says ``error``, ``failed``, ``denied``... is an error: CLI output and
shell transcripts carry no levels. A manifest may instead give a regex with named groups
``time``, ``level`` and ``message``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

LEVELS = {
    "fatal": "fatal", "panic": "fatal", "crit": "fatal", "critical": "fatal", "emerg": "fatal", "alert": "fatal",
    "error": "error", "erro": "error", "err": "error", "severe": "error",
    "warning": "warning", "warn": "warning",
    "info": "info", "notice": "info", "log": "info", "hint": "info", "detail": "info", "statement": "info",
    "debug": "debug", "trace": "debug", "fine": "debug",
}  # fmt: skip
#: Severity rank: lower is more relevant (fatal and error rank together: what ended the run and
#: what led to it are ordered by time, not by label).
RANK = {"fatal": 0, "error": 0, "warning": 1, "info": 2, "debug": 3}

_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?"
_SYSLOG = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}"
_TIME = re.compile(rf"(?:time=\"?)?({_ISO}|{_SYSLOG})\"?")
_LEVEL_KV = re.compile(r"\blevel=\"?(\w+)")
_MSG_KV = re.compile(r"\bmsg=(\"(?:[^\"\\]|\\.)*\"|\S+)")
_LEVEL_WORD = re.compile(
    r"(?<![\w-])(FATAL|PANIC|CRITICAL|CRIT|ERROR|ERRO|ERR|SEVERE|WARNING|WARN|INFO|NOTICE|DEBUG|TRACE|LOG|HINT|DETAIL)"
    r"(?=[\s:\[\]|]|$)"
)
_AFTER_LEVEL = re.compile(r"^(?:\[[^\]]*\])?[\s:|\]]*")
_ERRORISH = re.compile(
    r"\b(?:error|errors|fail|failed|failure|fatal|panic|exception|denied|refused|cannot|can't|unable|"
    r"not permitted|not found|no such|exit status [1-9]|traceback)\b",
    re.I,
)
_JSON_LEVEL_QUICK = re.compile(r'"(?:level|severity|lvl)"\s*:\s*"(\w+)"')
_JSON_LEVEL = ("level", "severity", "lvl", "log.level", "levelname")
_JSON_MSG = ("msg", "message", "error", "err", "event")
_JSON_TIME = ("time", "ts", "timestamp", "@timestamp", "asctime", "t")


@dataclass
class Record:
    level: str | None  # fatal | error | warning | info | debug | None
    message: str
    time: str | None  # ISO 8601 when it could be read, else as written


def level_of(word: str | None) -> str | None:
    if not word:
        return None
    return LEVELS.get(word) or LEVELS.get(str(word).strip().lower())


def parse_line(
    line: str, pattern: re.Pattern[str] | None = None, fmt: str = "auto", keep: frozenset[str] | None = None
) -> Record:
    """Read one line (without its newline).

    ``keep``: the levels the caller wants; a line whose explicit level is not among them comes
    back early with an empty message and no time (most lines of a big log are info: this is the
    fast path of a scan).
    """
    if pattern is not None:
        m = pattern.search(line)
        if m:
            g = m.groupdict()
            msg = g.get("message") or line
            return Record(level_of(g.get("level")) or _guess(msg), msg, _iso(g.get("time")))
    s = line.lstrip()
    if s.startswith("{") and fmt in ("auto", "json"):
        if keep is not None:
            quick = _JSON_LEVEL_QUICK.search(s)
            lvl = level_of(quick.group(1)) if quick else None
            if lvl is not None and lvl not in keep:
                return Record(lvl, "", None)
        try:
            obj = json.loads(s)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            msg = next((str(obj[k]) for k in _JSON_MSG if k in obj), s)
            lvl = next((level_of(obj[k]) for k in _JSON_LEVEL if k in obj), None)
            t = next((obj[k] for k in _JSON_TIME if k in obj), None)
            return Record(lvl or _guess(msg), msg, _iso(str(t)) if t is not None else None)
    kv = _LEVEL_KV.search(line) if "level=" in line else None
    if kv:
        lvl = level_of(kv.group(1))
        if keep is not None and lvl is not None and lvl not in keep:
            return Record(lvl, "", None)
        msg_m = _MSG_KV.search(line)
        msg = _unquote(msg_m.group(1)) if msg_m else line
        return Record(lvl or _guess(msg), msg, _time(line))
    lw = _LEVEL_WORD.search(line, 0, 120)
    if lw and level_of(lw.group(1)):
        lvl = level_of(lw.group(1))
        if keep is not None and lvl not in keep:
            return Record(lvl, "", None)
        msg = _AFTER_LEVEL.sub("", line[lw.end() :]) or line
        return Record(lvl, msg, _time(line))
    lvl = _guess(line)
    if keep is not None and lvl not in keep:
        return Record(lvl, "", None)
    return Record(lvl, line, _time(line))


def _time(line: str) -> str | None:
    tm = _TIME.search(line, 0, 80)
    return _iso(tm.group(1)) if tm else None


_EXCEPTION = re.compile(r"\b[\w.$]+(?:Error|Exception)\b")  # java.lang.OutOfMemoryError, ValueError


def _guess(msg: str) -> str | None:
    return "error" if _ERRORISH.search(msg) or _EXCEPTION.search(msg) else None


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        try:
            return json.loads(s)
        except ValueError:
            return s[1:-1]
    return s


def _iso(text: str | None) -> str | None:
    """An ISO 8601 time when the text is one (syslog times, which carry no year, stay as written)."""
    if not text:
        return None
    t = text.strip().replace(",", ".")
    if t.endswith(" UTC") or t.endswith("UTC"):
        t = t[:-3].rstrip() + "+00:00"
    try:
        return dt.datetime.fromisoformat(t.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text.strip()


def time_key(t: str | None) -> dt.datetime | None:
    """A comparable time (naive times taken as UTC); None for times without a date."""
    if not t:
        return None
    try:
        d = dt.datetime.fromisoformat(t)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
