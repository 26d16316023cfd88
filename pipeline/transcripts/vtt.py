"""WebVTT (Zoom, Teams, YouTube, browsers) -> turns, parsed with webvtt-py.

webvtt-py reads the cues (BOM, header metadata, NOTE/STYLE/REGION blocks, identifiers, cue
settings, Teams' short ``0:0:0.0`` timestamps, voice spans). It silently drops a block whose
timing line is broken or missing, so ``check_blocks`` first walks the blocks with webvtt-py's
own cue-block validator and refuses the file with the line of the bad block: a caption that
disappears would shift every quote after it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models import Word
from pipeline.textio import read_utf8
from pipeline.transcripts.builder import Turn
from pipeline.transcripts.captions import Cue, cues_to_turns

_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t]+([^>]*)>")
_TIME_TAG = re.compile(r"<((?:\d+:)?\d{1,2}:\d{2}\.\d{3})>")
_ANY_TAG = re.compile(r"<[^>\n]*(?:>|$)")
_NON_CUE = ("NOTE", "STYLE", "REGION")


def read_text(path: Path) -> str:
    """UTF-8 text (BOM dropped, newlines normalised); an InputError naming the line if not UTF-8."""
    text = read_utf8(path, "Export the transcript as UTF-8 (or convert it, e.g. iconv -f cp1252 -t utf-8).", bom=True)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) for each block, split as WebVTT does (blank lines, or a new "-->")."""
    blocks: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    start = 1
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            if cur:
                blocks.append((start, cur))
            cur = []
            continue
        if cur and "-->" in line and len(blocks) > 0 and any("-->" in x for x in cur):
            blocks.append((start, cur))  # a timing line right after cue text starts a new cue
            cur = []
        if not cur:
            start = i
        cur.append(line)
    if cur:
        blocks.append((start, cur))
    return blocks


def check_blocks(text: str, path: Path) -> list[int]:
    """Validate every block; return the line of each cue block, in order."""
    from webvtt.vtt import WebVTTCueBlock

    blocks = _blocks(text)
    if not blocks or not blocks[0][1][0].startswith("WEBVTT"):
        raise InputError(
            "not a WebVTT file: the first line must be 'WEBVTT'",
            "Check the file is a .vtt export; SRT files need the .srt extension.",
            path=path,
            line=1,
        )
    cue_lines: list[int] = []
    for line_no, lines in blocks[1:]:
        if lines[0].startswith(_NON_CUE):
            continue
        if WebVTTCueBlock.is_valid(lines):
            cue_lines.append(line_no)
            continue
        arrow = next((k for k, ln in enumerate(lines) if "-->" in ln), None)
        if arrow is None:
            raise InputError(
                f"cue text without a timing line: {lines[0][:60]!r}",
                "Each cue needs 'HH:MM:SS.mmm --> HH:MM:SS.mmm' before its text; add or fix it.",
                path=path,
                line=line_no,
            )
        raise InputError(
            f"broken cue timing {lines[arrow].strip()!r}",
            "Timings look like '00:01:02.500 --> 00:01:04.000'; fix this line.",
            path=path,
            line=line_no + arrow,
        )
    return cue_lines


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


def read_cues(path: Path) -> list[Cue]:
    """The cues of a WebVTT file, text cleaned of tags, with voice labels and source lines."""
    import webvtt
    from webvtt.errors import MalformedFileError

    text = read_text(path)
    cue_lines = check_blocks(text, path)
    try:
        vtt = webvtt.from_string(text)
    except MalformedFileError as exc:
        raise InputError(f"not a valid WebVTT file ({exc})", "Check the export.", path=path, line=1) from None
    cues: list[Cue] = []
    for idx, cap in enumerate(vtt.captions):
        line = cue_lines[idx] if idx < len(cue_lines) else None
        start = cap.start_time.in_milliseconds() / 1000
        end = cap.end_time.in_milliseconds() / 1000
        if end < start:
            raise InputError(
                f"cue ends ({cap.end}) before it starts ({cap.start})",
                "Fix the cue timing line.",
                path=path,
                line=line,
            )
        raw = cap.raw_text
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
        cues.append(Cue(start, end, _clean(cap.text), voice or None, line, _timed_words(raw, start, end)))
    return cues


def read(path: Path) -> list[Turn]:
    return cues_to_turns(read_cues(path))
