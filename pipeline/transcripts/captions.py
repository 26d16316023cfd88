"""Caption cues (WebVTT, SRT) -> speaker turns: rolling duplicates removed, one speaker's cues merged.

Meeting tools cut speech into 2-5 second cues; a reviewer wants turns. Consecutive cues of one
speaker (gap <= ``MAX_GAP_S``) become one segment whose words keep each cue's timing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.transcripts.builder import Span, Turn, merge_spans

MAX_GAP_S = 1.5
MAX_TURN_S = 45.0

#: Zoom and many SRT exports put the speaker in the text: "Alice Moreau: text".
_NAME_PREFIX = re.compile(
    r"^\s*(?:-\s*)?([A-Z][\w.'’-]*(?:[ ][\w.'’-]+){0,3}|SPEAKER_\d+|Speaker \d+)\s*:\s+(.*)$", re.S
)


@dataclass
class Cue:
    start: float
    end: float
    text: str  # tags stripped, lines joined with "\n"
    label: str | None
    line: int | None = None
    words: list | None = None


def split_name_prefixes(cues: list[Cue]) -> list[Cue]:
    """Take "Name: text" prefixes as speaker labels when most unlabelled cues use them."""
    unlabelled = [c for c in cues if c.label is None and c.text.strip()]
    if not unlabelled:
        return cues
    matches = [_NAME_PREFIX.match(c.text) for c in unlabelled]
    if sum(1 for m in matches if m) * 2 < len(unlabelled):
        return cues
    last: str | None = None
    for cue, m in zip(unlabelled, matches, strict=True):
        if m:
            cue.label, cue.text = m.group(1).strip(), m.group(2).strip()
            last = cue.label
        else:
            cue.label = last  # a caption continued without repeating the name
    return cues


def drop_rolling_duplicates(cues: list[Cue]) -> list[Cue]:
    """YouTube-style rolling captions repeat the previous cue's last line(s); keep only new lines."""
    out: list[Cue] = []
    prev_lines: list[str] = []
    for cue in cues:
        lines = [ln.strip() for ln in cue.text.split("\n") if ln.strip()]
        keep = lines
        for k in range(min(len(lines), len(prev_lines)), 0, -1):
            if lines[:k] == prev_lines[-k:]:
                keep = lines[k:]
                break
        if lines and not keep and out and cue.label == out[-1].label:
            out[-1].end = max(out[-1].end, cue.end)  # a pure repeat: it only extends the display
            continue
        if keep is not lines:
            cue.text = "\n".join(keep)
            cue.words = None
        prev_lines = lines
        if keep:
            out.append(cue)
    return out


def cues_to_turns(cues: list[Cue]) -> list[Turn]:
    """Merge consecutive cues of one speaker into turns (cues sorted by start first)."""
    cues = sorted(cues, key=lambda c: c.start)
    cues = drop_rolling_duplicates(split_name_prefixes(cues))
    turns: list[Turn] = []
    group: list[Cue] = []

    def flush() -> None:
        if group:
            spans = [Span(c.start, c.end, " ".join(c.text.split()), c.words) for c in group]
            turns.append(merge_spans(group[0].label, spans, line=group[0].line))
            group.clear()

    for cue in cues:
        if group:
            same = cue.label == group[0].label
            gap = cue.start - max(c.end for c in group)
            if not same or gap > MAX_GAP_S or cue.end - group[0].start > MAX_TURN_S:
                flush()
        group.append(cue)
    flush()
    return turns
