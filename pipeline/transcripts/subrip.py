"""SubRip (.srt) -> turns, parsed with the ``srt`` library.

``srt`` is lenient: a broken end time ends up in ``proprietary`` and a block without a timing
line is glued to the previous caption. Both would silently misplace text in time, so they are
refused here with the line of the block.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import InputError
from pipeline.transcripts.builder import Turn
from pipeline.transcripts.captions import Cue, cues_to_turns
from pipeline.transcripts.vtt import read_text

_FORMAT_TAG = re.compile(r"</?(?:b|i|u|s|font)(?:\s[^>]*)?>", re.I)
_ASS_TAG = re.compile(r"\{\\[^}]*\}|\{[A-Za-z]:[^}]*\}")
_COORDS = re.compile(r"^(?:\s*[XY][12]:\d+)*\s*$")
_TIMING_LINE = re.compile(r"-->")


def _clean(text: str) -> str:
    return _ASS_TAG.sub("", _FORMAT_TAG.sub("", text)).strip()


def read_cues(path: Path) -> list[Cue]:
    import srt

    text = read_text(path)
    timing_lines = [i for i, ln in enumerate(text.split("\n"), start=1) if _TIMING_LINE.search(ln)]
    try:
        subs = list(srt.parse(text))
    except srt.SRTParseError as exc:
        line = text[: exc.actual_start].count("\n") + 1
        raise InputError(
            f"not a valid SubRip block: {text[exc.expected_start : exc.actual_start].strip()[:60]!r}",
            "Each block is: a number, 'HH:MM:SS,mmm --> HH:MM:SS,mmm', then text, then a blank line.",
            path=path,
            line=line,
        ) from None
    if not subs and text.strip():
        raise InputError("no subtitles found", "Check this is a SubRip (.srt) file.", path=path, line=1)
    cues: list[Cue] = []
    for k, sub in enumerate(subs):
        line = timing_lines[k] if k < len(timing_lines) else None
        if sub.proprietary and not _COORDS.match(sub.proprietary):
            raise InputError(
                f"broken timing: unexpected {sub.proprietary.strip()!r} after the times",
                "Timings look like '00:01:02,500 --> 00:01:04,000'; fix this line.",
                path=path,
                line=line,
            )
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        if end < start:
            raise InputError(
                f"caption ends ({sub.end}) before it starts ({sub.start})",
                "Fix the timing line.",
                path=path,
                line=line,
            )
        if "\n\n" in sub.content.strip():
            extra = line + sub.content.strip().split("\n\n")[0].count("\n") + 3 if line else None
            raise InputError(
                "caption text without a timing line",
                "Each block needs its number and timing line; add them or remove the stray text.",
                path=path,
                line=extra,
            )
        cues.append(Cue(start, end, _clean(sub.content), None, line))
    return cues


def read(path: Path) -> list[Turn]:
    return cues_to_turns(read_cues(path))
