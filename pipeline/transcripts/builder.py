"""Turns (raw speaker label + time + text) -> the canonical ``Transcript``; shared by every importer.

Importers only say who spoke when; this module numbers speakers (S1, S2, ... in order of first
appearance), orders segments by start and spreads word timings inside timed spans, so every
format ends up in exactly the same shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.models import Segment, Speaker, Transcript, TranscriptSource, Word

#: Label used when a source names no speaker at all (plain captions, whisper JSON without diarisation).
UNLABELLED = "Unlabelled speaker"

_WORD = re.compile(r"\S+")


@dataclass
class Span:
    """A stretch of text with measured start/end (a cue, a caption) inside a turn."""

    start: float
    end: float
    text: str
    words: list[Word] | None = None  # measured words when the source has them


@dataclass
class Turn:
    """What one speaker said in one go, as the source gives it."""

    label: str | None
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    line: int | None = None  # line in the source file (for messages)


def words_in_span(span: Span) -> list[Word]:
    """Words of a timed span; without measured words, spread the span evenly over its words.

    Even spreading inside a 2-5 s caption cue is far closer than the cue's bounds alone, and
    lets a quote be cited to the second.
    """
    if span.words:
        return span.words
    tokens = _WORD.findall(span.text)
    if not tokens:
        return []
    step = max(span.end - span.start, 0.0) / len(tokens)
    return [
        Word(start=round(span.start + i * step, 3), end=round(span.start + (i + 1) * step, 3), text=tok)
        for i, tok in enumerate(tokens)
    ]


def merge_spans(label: str | None, spans: list[Span], line: int | None = None) -> Turn:
    """One turn from consecutive spans of one speaker (text joined with spaces, words kept)."""
    words: list[Word] = []
    for span in spans:
        words.extend(words_in_span(span))
    text = " ".join(s.text.strip() for s in spans if s.text.strip())
    return Turn(
        label=label,
        start=min(s.start for s in spans),
        end=max(s.end for s in spans),
        text=text,
        words=words,
        line=line,
    )


def assemble(interview_id: str, source: TranscriptSource, turns: list[Turn]) -> Transcript:
    """Number speakers by first appearance and segments by start time; drop empty turns."""
    turns = [t for t in turns if t.text.strip()]
    turns.sort(key=lambda t: t.start)  # stable: equal starts keep source order
    speakers: dict[str, Speaker] = {}
    segments: list[Segment] = []
    for turn in turns:
        label = turn.label if turn.label and turn.label.strip() else UNLABELLED
        label = label.strip()
        sp = speakers.get(label)
        if sp is None:
            sp = Speaker(id=f"S{len(speakers) + 1}", name=label, role="unknown", label=label)
            speakers[label] = sp
        segments.append(
            Segment(
                id=len(segments),
                start=round(max(turn.start, 0.0), 3),
                end=round(max(turn.end, turn.start, 0.0), 3),
                speaker=sp.id,
                text=turn.text.strip(),
                words=turn.words,
            )
        )
    return Transcript(interview=interview_id, source=source, speakers=list(speakers.values()), segments=segments)
