"""Deterministic triage: group a log's error and warning lines by template, link each group to
the atoms that describe it, and order the groups by relevance. No LLM.

Streaming: lines are read one at a time and only the distinct masked forms of error and warning
lines are kept (one verbatim example each, capped at ``max_forms``), so memory does not grow
with the size of the log. Order: errors before warnings; among errors, the first to occur first
(what ended a run usually starts the cascade of errors it causes), then the most frequent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.ops.linking import Catalog, Link, resolution
from pipeline.ops.masking import tokens
from pipeline.ops.miner import cluster
from pipeline.ops.records import RANK, Record, parse_line, time_key

MAX_FORMS = 50_000
MAX_LINE_CHARS = 4000
DEFAULT_MAX_GROUPS = 50
_CHUNK = 1 << 20

Progress = Callable[[int], None]  # called with the bytes read since the last call


@dataclass
class _Form:
    file: str
    line: str
    line_number: int
    seq: int
    message: str
    level: str
    count: int = 0
    first_seen: str | None = None
    last_seen: str | None = None


@dataclass
class Group:
    fingerprint: str
    template: str
    file: str
    line: str
    line_number: int
    count: int
    first_seen: str | None
    last_seen: str | None
    level: str
    message: str
    seq: int
    links: list[Link] = field(default_factory=list)

    @property
    def uncovered(self) -> bool:
        return not self.links


@dataclass
class TriageResult:
    groups: list[Group]
    lines: int = 0
    files: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)  # what was cut, said in words

    @property
    def uncovered_errors(self) -> list[Group]:
        return [g for g in self.groups if g.uncovered and RANK.get(g.level, 9) == 0]

    def to_dict(self, max_groups: int | None = None) -> dict[str, Any]:
        groups = self.groups if max_groups is None else self.groups[:max_groups]
        out: dict[str, Any] = {"groups": [group_dict(g) for g in groups]}
        out["summary"] = {
            "files": self.files,
            "lines": self.lines,
            "groups": len(self.groups),
            "uncovered": len([g for g in self.groups if g.uncovered]),
            "uncovered_errors": len(self.uncovered_errors),
            "truncated": self.truncated
            + ([f"{len(self.groups) - len(groups)} more groups not shown"] if len(groups) < len(self.groups) else []),
        }
        return out


def group_dict(g: Group) -> dict[str, Any]:
    """One group in the public shape of ``kb triage --format json`` and ``POST /v1/triage``."""
    return {
        "fingerprint": g.fingerprint,
        "file": g.file,
        "line": g.line,
        "line_number": g.line_number,
        "count": g.count,
        "first_seen": g.first_seen,
        "last_seen": g.last_seen,
        "level": g.level,
        "atoms": [link_dict(link, g.message) for link in g.links],
        "uncovered": g.uncovered,
    }


def link_dict(link: Link, focus: str) -> dict[str, Any]:
    a = link.atom
    return {
        "atom_id": a.atom_id,
        "title": a.title,
        "status": a.status,
        "score": link.score,
        "match": link.how,
        "resolution": resolution(a, focus),
        "citations": [citation(a, focus)],
    }


def citation(atom: Any, focus: str) -> dict[str, Any]:
    """The ``/v1/ask`` citation shape: the atom and its sources, the ones ``focus`` rests on first."""
    from pipeline.answer.citations import rank_sources

    return {"atom_id": atom.atom_id, "title": atom.title, "sources": rank_sources(list(atom.sources), focus)}


class Scanner:
    """Feed it lines (``feed``) or files (``scan_file``); ``result`` groups and links them."""

    def __init__(
        self,
        *,
        since: dt.datetime | None = None,
        pattern: re.Pattern[str] | None = None,
        fmt: str = "auto",
        levels: tuple[str, ...] = ("fatal", "error", "warning"),
        max_forms: int = MAX_FORMS,
    ):
        self.since = since
        self.pattern = pattern
        self.fmt = fmt
        self.levels = frozenset(levels)
        self.max_forms = max_forms
        self.forms: dict[tuple[str, ...], _Form] = {}
        self.lines = 0
        self.dropped = 0
        self.files: list[str] = []
        self._seq = 0

    def feed(self, lines: Iterable[str], file: str) -> None:
        self.files.append(file)
        for number, raw in enumerate(lines, 1):
            self.lines += 1
            line = raw.rstrip("\r\n")
            if not line.strip() or line[:1] in (" ", "\t"):
                continue  # blank, or a continuation (stack frame) of the record above
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS]
            rec = parse_line(line, self.pattern, self.fmt, self.levels)
            if rec.level not in self.levels or not self._recent(rec):
                continue
            self._add(rec, line, file, number)

    def _recent(self, rec: Record) -> bool:
        if self.since is None:
            return True
        t = time_key(rec.time)
        return t is None or t >= self.since

    def _add(self, rec: Record, line: str, file: str, number: int) -> None:
        form = tuple(tokens(rec.message))
        f = self.forms.get(form)
        if f is None:
            if len(self.forms) >= self.max_forms:
                self.dropped += 1
                return
            self._seq += 1
            f = self.forms[form] = _Form(file, line, number, self._seq, rec.message, rec.level or "error")
            f.first_seen = rec.time
        f.count += 1
        if rec.time:
            f.last_seen = rec.time
        if RANK.get(rec.level or "error", 9) < RANK.get(f.level, 9):
            f.level = rec.level or f.level

    def scan_file(self, path: Path, name: str | None = None, progress: Progress | None = None) -> None:
        with path.open("rb") as fh:
            if self.pattern is None and self.levels <= _PREFILTERED:
                self._scan_fast(fh, name or str(path), progress)
            else:
                self.feed(iter_lines(fh, progress), name or str(path))

    def _scan_fast(self, fh: BinaryIO, file: str, progress: Progress | None) -> None:
        """Like ``feed``, but only lines that hold an error or warning word reach the parser:
        one C-level search over each lowercased chunk skips the (many) other lines."""
        self.files.append(file)
        line_no = 0  # lines before the current chunk
        rest = b""
        while True:
            data = fh.read(_CHUNK)
            if progress and data:
                progress(len(data))
            buf = rest + data
            if data:
                cut = buf.rfind(b"\n")
                if cut < 0:
                    rest = buf
                    continue
                buf, rest = buf[: cut + 1], buf[cut + 1 :]
            else:
                rest = b""
            if buf:
                text = buf.decode("utf-8", "replace")
                low = text.lower()
                pos = counted = 0
                seen = line_no
                while True:
                    m = _CANDIDATE.search(low, pos)
                    if m is None:
                        break
                    start = low.rfind("\n", 0, m.start()) + 1
                    end = low.find("\n", m.end())
                    end = len(low) if end < 0 else end
                    seen += low.count("\n", counted, start)
                    counted = start
                    self._line(text[start:end], file, seen + 1)
                    pos = end + 1
                line_no += low.count("\n") + (0 if low.endswith("\n") else 1)
            if not data:
                break
        self.lines += line_no

    def _line(self, raw: str, file: str, number: int) -> None:
        line = raw.rstrip("\r")
        if not line.strip() or line[:1] in (" ", "\t"):
            return
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS]
        rec = parse_line(line, self.pattern, self.fmt, self.levels)
        if rec.level in self.levels and self._recent(rec):
            self._add(rec, line, file, number)

    def result(self, catalog: Catalog | None) -> TriageResult:
        return build(self, catalog)


#: Every line whose level is one of these, or that parse_line would call an error, holds one of
#: these (lowercased) words; the fast scan looks only at such lines.
_PREFILTERED = frozenset({"fatal", "error", "warning"})
_CANDIDATE = re.compile(
    r"erro|err\b|warn|fatal|panic|crit|severe|emerg|alert|fail|denied|refused|cannot|can't|unable|exception|"
    r"not permitted|not found|no such|exit status|traceback"
)


def iter_lines(fh: BinaryIO, progress: Progress | None = None) -> Iterator[str]:
    """Decode a byte stream line by line (undecodable bytes replaced), reporting bytes read."""
    text = io.TextIOWrapper(_Counting(fh, progress), encoding="utf-8", errors="replace", newline="")  # type: ignore[type-var]  # a BinaryIO wrapper
    yield from text


class _Counting(io.RawIOBase):
    def __init__(self, fh: BinaryIO, progress: Progress | None):
        self.fh, self.progress = fh, progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.fh.read(min(len(b), _CHUNK))
        n = len(data)
        b[:n] = data
        if self.progress and n:
            self.progress(n)
        return n


def build(scanner: Scanner, catalog: Catalog | None) -> TriageResult:
    templates = cluster(scanner.forms.keys())
    merged: dict[tuple[str, ...], list[_Form]] = {}
    for form, f in scanner.forms.items():
        merged.setdefault(templates[form], []).append(f)
    groups = []
    for tmpl, members in merged.items():
        first = min(members, key=lambda m: m.seq)
        times = [m.first_seen for m in members if m.first_seen] + [m.last_seen for m in members if m.last_seen]
        keyed = sorted((t for t in times if time_key(t)), key=time_key)  # type: ignore[arg-type]  # the filter keeps only times time_key can order
        text = " ".join(tmpl)
        groups.append(
            Group(
                fingerprint=hashlib.sha1(text.encode()).hexdigest()[:12],
                template=text,
                file=first.file,
                line=first.line,
                line_number=first.line_number,
                count=sum(m.count for m in members),
                first_seen=keyed[0] if keyed else first.first_seen,
                last_seen=keyed[-1] if keyed else (max(m.last_seen or "" for m in members) or None),
                level=min((m.level for m in members), key=lambda lv: RANK.get(lv, 9)),
                message=first.message,
                seq=first.seq,
            )
        )
    # by time when every group has one (files of several services interleave), else by position
    timed = all(time_key(g.first_seen) for g in groups)
    groups.sort(key=lambda g: (RANK.get(g.level, 9), time_key(g.first_seen) if timed else 0, g.seq, -g.count))
    if catalog is not None and len(catalog):
        for g in groups:
            g.links = catalog.link(g.message)
    truncated = []
    if scanner.dropped:
        truncated.append(f"{scanner.dropped} lines of new kinds past the first {scanner.max_forms} were not grouped")
    return TriageResult(groups=groups, lines=scanner.lines, files=scanner.files, truncated=truncated)


def triage_text(text: str, catalog: Catalog | None, *, name: str = "-") -> TriageResult:
    """Triage a pasted log (``kb triage -``, ``POST /v1/triage``)."""
    s = Scanner()
    s.feed(io.StringIO(text), name)
    return s.result(catalog)


def parse_since(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """``24h``, ``30m``, ``7d``, ``90s`` or an ISO time -> an aware datetime (None: no limit)."""
    if not text or text.strip().lower() in ("all", "0", "none"):
        return None
    from pipeline.errors import InputError

    now = now or dt.datetime.now(dt.UTC)
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - dt.timedelta(**{unit: int(m.group(1))})
    t = time_key(text.strip().replace("Z", "+00:00"))
    if t is None:
        raise InputError(
            f"--since {text!r} is neither a duration nor a time", "use 24h, 30m, 7d or 2026-11-30T22:00:00Z"
        )
    return t
