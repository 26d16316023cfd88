"""WebVTT (Zoom, Teams, YouTube, browsers) -> turns: the spec's leniency around webvtt-py.

``spec_blocks`` walks the file the way the WebVTT parsing rules do (the state machine of
mozilla/vtt.js, which its test suite pins down): a header, then blocks that are a NOTE, a cue
(optional id line, timing line, text up to a blank line or a line holding ``-->``) or something
a player ignores. Timestamps follow the same rules (any number of hour digits; ``mm:ss.ttt``
whose first field is over 59 reads as hours:minutes, as vtt.js does). The cues are then written
out canonically and parsed by webvtt-py (tags, voices, entities); if it rejects that text, the
cues of the walk are used directly.

Lenient where the spec is lenient, an error where it is not: a block of text without a timing
line (a blank line inside a cue's text) and a cue whose id line holds ``-->`` are skipped as a
player skips them, with a note naming the line; a cue whose timing line is broken would lose
its spoken text, so the file is refused with that line.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models import Word
from pipeline.textio import read_utf8
from pipeline.transcripts.builder import Turn
from pipeline.transcripts.captions import Cue, cues_to_turns

_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t]+([^>]*)>")
_TIME_TAG = re.compile(r"<((?:\d+:)?\d{1,2}:\d{2}\.\d{3})>")
_ANY_TAG = re.compile(r"<[^>]*(?:>|\Z)")  # the cue text tokenizer: a tag runs to '>' or the end
_SIGNATURE = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_STAMP = re.compile(r"(\d+):(\d{2})(:\d{2})?\.(\d{3})")
_TEAMS_STAMP = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})\.(\d{1,3})(?!\d)")  # Teams: 0:0:0.57 (webvtt-py reads it)
_NOTE = re.compile(r"^NOTE(?:$|[ \t])")


def read_text(path: Path) -> str:
    """UTF-8 text (BOM dropped, newlines normalised); an InputError naming the line if not UTF-8."""
    text = read_utf8(path, "Export the transcript as UTF-8 (or convert it, e.g. iconv -f cp1252 -t utf-8).", bom=True)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _stamp(text: str, pos: int) -> tuple[float, int] | None:
    """A WebVTT timestamp at ``text[pos:]`` (vtt.js rules) -> (seconds, end position)."""
    m = _STAMP.match(text, pos)
    if not m:
        t = _TEAMS_STAMP.match(text, pos)
        if t is None:
            return None
        h, mi, sec = int(t.group(1)), int(t.group(2)), int(t.group(3))
        return h * 3600 + mi * 60 + sec + float("0." + t.group(4)), t.end()
    first, second, third, frac = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
    if third:
        h, mi, sec = int(first), second, int(third[1:])
    elif int(first) > 59:  # [hours]:[minutes].[ms], as vtt.js reads it
        h, mi, sec = int(first), second, 0
    else:
        h, mi, sec = 0, int(first), second
    return h * 3600 + mi * 60 + sec + frac / 1000, m.end()


def _timing(line: str) -> tuple[float, float, str] | None:
    """(start, end, settings) of a cue timing line, or None when it is not one."""
    pos = len(line) - len(line.lstrip())
    start = _stamp(line, pos)
    if start is None:
        return None
    pos = start[1]
    while pos < len(line) and not (line[pos].isspace() or line[pos].isalpha() or line[pos] == "-"):
        pos += 1  # vtt.js drops what follows the timestamp up to a space, letter or '-'
    rest = line[pos:].lstrip()
    if not rest.startswith("-->"):
        return None
    rest = rest[3:].lstrip()
    end = _stamp(rest, 0)
    if end is None:
        return None
    pos = end[1]
    while pos < len(rest) and not (rest[pos].isspace() or rest[pos].isalpha() or rest[pos] == "-"):
        pos += 1
    return start[0], end[0], rest[pos:].strip()


@dataclass
class SpecCue:
    """One cue as the spec's parser sees it, with the file line of its timing line."""

    ident: str | None
    start: float
    end: float
    settings: str
    lines: list[str]
    line: int


_BROKEN_HINT = "Timings look like '00:01:02.500 --> 00:01:04.000'; fix this line."


class _Walker:
    """vtt.js's states (HEADER, ID, CUE, CUETEXT, BADCUE, NOTE) plus SKIP for a cue the spec drops."""

    def __init__(self, path: Path, notes: list[str] | None):
        self.path, self.notes = path, notes
        self.cues: list[SpecCue] = []
        self.state = "HEADER"
        self.cue: SpecCue | None = None
        self.ident: tuple[str, int] | None = None
        self.bad: tuple[int, str, bool] | None = None  # (line, timing text, the dropped block holds text)

    def note(self, line_no: int, what: str) -> None:
        if self.notes is not None:
            self.notes.append(f"{self.path.name}:{line_no}: {what}")

    def text_without_timing(self) -> None:
        assert self.ident is not None
        self.note(self.ident[1], f"text without a timing line ({self.ident[0][:40]!r}) is not a cue; WebVTT ignores "
                  "it, so kb does too (if it belongs to the cue above, remove the blank line)")  # fmt: skip
        self.ident = None

    def refuse_bad(self) -> None:
        if self.bad is not None and self.bad[2]:
            raise InputError(f"broken cue timing {self.bad[1].strip()[:60]!r}", _BROKEN_HINT, path=self.path,
                             line=self.bad[0])  # fmt: skip
        self.bad = None

    def step(self, line: str, i: int) -> bool:
        """Consume one line; False when the same line must be read again in the new state."""
        st = self.state
        if st in ("HEADER", "NOTE", "SKIP"):
            self.state = "ID" if not line else st
        elif st == "BADCUE":
            self.badcue(line)
        elif st == "ID":
            if _NOTE.match(line) or (line.startswith(("STYLE", "REGION")) and "-->" not in line):
                self.state = "NOTE"
            elif line:
                self.state = "CUE"
                if "-->" in line:
                    return False  # the same line is the timing line
                self.ident = (line, i)
        elif st == "CUE":
            self.timing_line(line, i)
        elif not line or "-->" in line:  # CUETEXT ends
            assert self.cue is not None
            self.cues.append(self.cue)
            self.cue, self.state = None, "ID"
            return not line  # a timing line right after cue text starts the next cue
        else:
            assert self.cue is not None
            self.cue.lines.append(line)
        return True

    def badcue(self, line: str) -> None:
        if not line:
            self.refuse_bad()
            self.state = "ID"
        elif self.bad is not None and _timing(line) is not None:  # the bad line was an id holding '-->'
            self.note(
                self.bad[0], f"cue id line {self.bad[1][:40]!r} holds '-->'; WebVTT skips this cue, so kb does too"
            )
            self.bad, self.state = None, "SKIP"
        elif self.bad is not None:
            self.bad = (self.bad[0], self.bad[1], True)

    def timing_line(self, line: str, i: int) -> None:
        timing = _timing(line)
        if timing is not None:
            ident = self.ident[0] if self.ident else None
            self.cue = SpecCue(ident, timing[0], timing[1], timing[2], [], i)
            self.ident, self.state = None, "CUETEXT"
        elif self.ident is not None and "-->" not in line:
            self.text_without_timing()
            self.state = "SKIP" if line else "ID"
        else:
            self.ident = None
            self.bad, self.state = ((i, line, False), "BADCUE") if line else (None, "ID")

    def finish(self) -> list[SpecCue]:
        if self.cue is not None:
            self.cues.append(self.cue)
        if self.state == "CUE" and self.ident is not None:
            self.text_without_timing()
        if self.state == "BADCUE":
            self.refuse_bad()
        return self.cues


def spec_blocks(text: str, path: Path, notes: list[str] | None = None) -> list[SpecCue]:
    """The cues of a WebVTT file by the spec's state machine (see the module docstring)."""
    lines = text.split("\n")
    if not lines or not _SIGNATURE.match(lines[0]):
        raise InputError(
            "not a WebVTT file: the first line must be 'WEBVTT'",
            "Check the file is a .vtt export; SRT files need the .srt extension.",
            path=path,
            line=1,
        )
    walker = _Walker(path, notes)
    i = 2
    while i <= len(lines):
        if walker.step(lines[i - 1], i):
            i += 1
    return walker.finish()


def _canonical(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _webvtt_captions(cues: list[SpecCue]) -> list[tuple[str, str]] | None:
    """(raw text, text) of each cue through webvtt-py, or None when it reads them differently."""
    import webvtt
    from webvtt.errors import MalformedFileError

    parts = ["WEBVTT", ""]
    for c in cues:
        payload = [ln for ln in c.lines if ln.strip()] or ["\u200b"]  # keep empty cues as cues
        parts += [f"{_canonical(c.start)} --> {_canonical(c.end)}", *payload, ""]
    try:
        captions = webvtt.from_string("\n".join(parts)).captions
    except (MalformedFileError, ValueError):
        return None
    if len(captions) != len(cues):
        return None
    return [(cap.raw_text.replace("\u200b", ""), cap.text.replace("\u200b", "")) for cap in captions]


def _clean(raw: str) -> str:
    return html.unescape(_ANY_TAG.sub("", raw)).strip()


def _seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.split(":")]
    secs = 0.0
    for p in parts:
        secs = secs * 60 + p
    return secs


def _timed_words(raw: str, start: float, end: float) -> list[Word] | None:
    """Words from inline ``<00:05:04.199>`` tags (YouTube auto captions); None when there are none."""
    pieces = _TIME_TAG.split(raw)
    if len(pieces) < 3:
        return None
    times = [start] + [_seconds(t) for t in pieces[1::2]]
    chunks = pieces[0::2]
    words: list[Word] = []
    for i, chunk in enumerate(chunks):
        t0 = times[i]
        t1 = times[i + 1] if i + 1 < len(times) else end
        tokens = _clean(chunk).split()
        for k, tok in enumerate(tokens):
            step = max(t1 - t0, 0.0) / len(tokens)
            words.append(Word(start=round(t0 + k * step, 3), end=round(t0 + (k + 1) * step, 3), text=tok))
    return words or None


def read_cues(path: Path, notes: list[str] | None = None) -> list[Cue]:
    """The cues of a WebVTT file, text cleaned of tags, with voice labels and source lines."""
    text = read_text(path)
    spec = spec_blocks(text, path, notes)
    texts = _webvtt_captions(spec) or [("\n".join(c.lines), "\n".join(c.lines)) for c in spec]
    cues: list[Cue] = []
    for c, (raw, plain) in zip(spec, texts, strict=True):
        line, start, end = c.line, round(c.start, 3), round(c.end, 3)
        if end < start:
            raise InputError(
                f"cue ends ({_canonical(end)}) before it starts ({_canonical(start)})",
                "Fix the cue timing line.",
                path=path,
                line=line,
            )
        voices = list(_VOICE.finditer(raw))
        if len(voices) > 1:  # several speakers in one cue: split it by voice span
            parts = []
            for k, m in enumerate(voices):
                stop = voices[k + 1].start() if k + 1 < len(voices) else len(raw)
                parts.append((m.group(1).strip(), _clean(raw[m.end() : stop])))
            total = sum(len(t) for _, t in parts) or 1
            t0 = start
            for name, part in parts:
                t1 = t0 + (end - start) * len(part) / total
                cues.append(Cue(round(t0, 3), round(t1, 3), part, name or None, line))
                t0 = t1
            continue
        voice = voices[0].group(1).strip() if voices else None
        cues.append(Cue(start, end, _clean(plain), voice or None, line, _timed_words(raw, start, end)))
    return cues


def read(path: Path, notes: list[str] | None = None) -> list[Turn]:
    return cues_to_turns(read_cues(path, notes))
