"""Grounding: does a quote match what the named speaker said in the cited seconds?

This is the code that keeps atoms honest. Distillation calls it on every evidence quote (a
failing quote makes the LLM re-ask, then the item is dropped); ``kb check`` calls it again on
atoms whose transcripts are present, so a reviewer's edit that breaks a quote is caught.

Matching is fuzzy (rapidfuzz ``partial_ratio`` over normalised word tokens) so ASR noise and
punctuation don't fail a faithful quote, but the speaker, their role and the time range are
strict. When word timings exist, the returned ``start``/``end`` are refined to the first and
last matched word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from pipeline.models import Segment, Speaker, Transcript

_TOKEN = re.compile(r"\w+", re.UNICODE)

#: Quotes shorter than this many words are too weak to prove anything.
MIN_QUOTE_WORDS = 3


@dataclass
class Grounding:
    ok: bool
    score: float
    reason: str
    segment_ids: list[int] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    speaker_id: str | None = None
    speaker_role: str | None = None


@dataclass
class _Tok:
    text: str
    start: float
    end: float
    segment: int


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def normalise(text: str) -> str:
    """Lowercase word tokens joined by single spaces (what quotes are compared on)."""
    return " ".join(tokens(text))


def find_speakers(transcript: Transcript, name: str) -> list[Speaker]:
    """Speakers whose name (or raw label) matches ``name``: exact, then case-insensitive, then fuzzy."""
    exact = [s for s in transcript.speakers if s.name == name or s.id == name]
    if exact:
        return exact
    folded = name.casefold().strip()
    loose = [
        s for s in transcript.speakers if s.name.casefold().strip() == folded or (s.label or "").casefold() == folded
    ]
    if loose:
        return loose
    return [s for s in transcript.speakers if fuzz.token_sort_ratio(s.name, name) >= 90]


def _segment_tokens(seg: Segment) -> list[_Tok]:
    out: list[_Tok] = []
    timed = [w for w in seg.words if w.start is not None and w.end is not None]
    if timed and len(timed) == len(seg.words):
        for w in seg.words:
            for t in tokens(w.text):
                out.append(_Tok(t, float(w.start), float(w.end), seg.id))  # type: ignore[arg-type]
        if out:
            return out
    toks = tokens(seg.text)
    if not toks:
        return out
    span = max(seg.end - seg.start, 0.0)
    step = span / len(toks)
    for i, t in enumerate(toks):
        out.append(_Tok(t, seg.start + i * step, seg.start + (i + 1) * step, seg.id))
    return out


def _match(quote_norm: str, toks: list[_Tok]) -> tuple[float, int, int]:
    """Best partial match of the quote in the token stream: (score, first token, last token)."""
    if not toks:
        return 0.0, -1, -1
    text = " ".join(t.text for t in toks)
    align = fuzz.partial_ratio_alignment(quote_norm, text)
    if align is None:
        return 0.0, -1, -1
    # char offsets in ``text`` -> token indexes
    starts: list[int] = []
    pos = 0
    for t in toks:
        starts.append(pos)
        pos += len(t.text) + 1
    first = last = 0
    for i, s in enumerate(starts):
        if s <= align.dest_start:
            first = i
        if s < align.dest_end:
            last = i
    return float(align.score), first, last


def verify_quote(
    transcript: Transcript,
    speaker: str,
    start: float,
    end: float,
    quote: str,
    *,
    threshold: float = 90.0,
    slack_s: float = 5.0,
    require_role: str = "expert",
) -> Grounding:
    """Check that ``speaker`` said ``quote`` between ``start`` and ``end`` (± ``slack_s``).

    Fails (``ok=False``, with a ``reason`` a person can act on) when the speaker is unknown or
    is not an expert, when the quote is too short, or when the best match inside the window
    scores below ``threshold``; in that case the reason says where the words were found
    instead, if anywhere.
    """
    quote_norm = normalise(quote)
    if len(quote_norm.split()) < MIN_QUOTE_WORDS:
        return Grounding(False, 0.0, f"the quote has fewer than {MIN_QUOTE_WORDS} words; quote a whole phrase")
    people = find_speakers(transcript, speaker)
    if not people:
        names = ", ".join(sorted({s.name for s in transcript.speakers})) or "none"
        return Grounding(
            False, 0.0, f"'{speaker}' is not a speaker of interview {transcript.interview} (speakers: {names})"
        )
    ids = {p.id for p in people}
    roles = {p.role for p in people}
    role = people[0].role
    if require_role and require_role not in roles:
        return Grounding(
            False,
            0.0,
            f"'{speaker}' is the {role} of this interview, not an {require_role}; only what experts said may be quoted",
            speaker_id=people[0].id,
            speaker_role=role,
        )
    lo, hi = start - slack_s, end + slack_s
    in_window = [s for s in transcript.segments if s.speaker in ids and s.end >= lo and s.start <= hi]
    toks = [t for s in in_window for t in _segment_tokens(s)]
    score, first, last = _match(quote_norm, toks)
    if score >= threshold and first >= 0:
        seg_ids = sorted({t.segment for t in toks[first : last + 1]})
        return Grounding(
            True,
            score,
            "ok",
            segment_ids=seg_ids,
            start=round(toks[first].start, 2),
            end=round(max(toks[last].end, toks[first].start), 2),
            speaker_id=people[0].id,
            speaker_role=role,
        )
    # Say where the words really are, so the fix is obvious.
    elsewhere = _locate(transcript, quote_norm, threshold)
    if elsewhere is not None:
        who, at = elsewhere
        if who.id in ids:
            reason = f"{speaker} said this at {at:.1f} s, outside the cited {start:.1f}-{end:.1f} s"
        else:
            reason = f"these words were said by {who.name} ({who.role}) at {at:.1f} s, not by {speaker}"
    else:
        reason = (
            f"{speaker} did not say this between {start:.1f} and {end:.1f} s (best match {score:.0f} < {threshold:.0f})"
        )
    return Grounding(False, score, reason, speaker_id=people[0].id, speaker_role=role)


def _locate(transcript: Transcript, quote_norm: str, threshold: float) -> tuple[Speaker, float] | None:
    """Where in the whole transcript (any speaker) the quote matches best, if it matches."""
    by_speaker: dict[str, list[Segment]] = {}
    for seg in transcript.segments:
        by_speaker.setdefault(seg.speaker, []).append(seg)
    best: tuple[float, Speaker, float] | None = None
    for sid, segs in by_speaker.items():
        sp = transcript.speaker(sid)
        if sp is None:
            continue
        toks = [t for s in segs for t in _segment_tokens(s)]
        score, first, _ = _match(quote_norm, toks)
        if score >= threshold and first >= 0 and (best is None or score > best[0]):
            best = (score, sp, toks[first].start)
    return (best[1], best[2]) if best else None
