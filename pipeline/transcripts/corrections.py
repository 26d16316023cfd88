"""Reviewers' corrections: found by comparing transcript.md with transcript.json, applied keeping times.

A corrected segment keeps its start and end; inside it, words the reviewer left alone keep their
measured timings and changed words share the time of the words they replace (difflib alignment).
Every correction is stored in ``transcript.corrections`` so a later re-import of the source
(new settings, ``--force``) re-applies it instead of losing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models import Interview, Speaker, Transcript, TranscriptCorrection, Word
from pipeline.transcripts import markdown


@dataclass
class Found:
    correction: TranscriptCorrection
    line: int


def find(md_text: str, md_path: Path, transcript: Transcript) -> tuple[list[Found], list[str]]:
    """Corrections in transcript.md relative to ``transcript`` (+ warnings). Misaligned turns: InputError."""
    turns = markdown.parse(md_text, md_path)
    segs = transcript.segments
    for k, seg in enumerate(segs):
        if k >= len(turns):
            raise InputError(
                f"transcript.md ends after {len(turns)} turns but the transcript has {len(segs)} "
                f"(missing: [{markdown.stamp(seg.start)}] ...)",
                "Turns cannot be deleted in transcript.md; restore them (git diff shows what went) and edit words only.",
                path=md_path,
                line=turns[-1].line if turns else 1,
            )
        turn = turns[k]
        if turn.stamp != markdown.stamp(seg.start):
            raise InputError(
                f"turn [{turn.stamp}] does not match segment {seg.id} at [{markdown.stamp(seg.start)}]: "
                "turns were added, removed, reordered or re-timed",
                "Keep the stamps and the order of turns as kb wrote them; correct only words and speaker names.",
                path=md_path,
                line=turn.line,
            )
    if len(turns) > len(segs):
        raise InputError(
            f"transcript.md has {len(turns) - len(segs)} turn(s) more than the transcript",
            "Turns cannot be added in transcript.md; add the words to an existing turn instead.",
            path=md_path,
            line=turns[len(segs)].line,
        )
    speakers = {sp.id: sp for sp in transcript.speakers}
    found: list[Found] = []
    warnings: list[str] = []
    for seg, turn in zip(segs, turns, strict=True):
        sp = speakers.get(seg.speaker)
        old_name = sp.name if sp else seg.speaker
        if turn.name != old_name:
            found.append(
                Found(
                    TranscriptCorrection(
                        segment=seg.id, start=seg.start, field="speaker", before=old_name, after=turn.name
                    ),
                    turn.line,
                )
            )
        elif sp and turn.role != sp.role:
            warnings.append(
                f"{md_path.name}:{turn.line}: role changed to '{turn.role}' is ignored; roles come from "
                "interview.yaml people"
            )
        if not turn.text:
            raise InputError(
                "a turn has no text left",
                "Turns cannot be emptied; restore the words (git diff) or mark them, e.g. [inaudible].",
                path=md_path,
                line=turn.line,
            )
        if turn.text != markdown.normalise(seg.text):
            found.append(
                Found(
                    TranscriptCorrection(
                        segment=seg.id, start=seg.start, field="text", before=seg.text, after=turn.text
                    ),
                    turn.line,
                )
            )
    return found, warnings


def retime(words: list[Word], new_text: str) -> list[Word]:
    """New words for a corrected text: unchanged words keep timings, changed ones share the old span."""
    if not words:
        return []
    new = new_text.split()
    out: list[Word] = []
    sm = SequenceMatcher(a=[w.text for w in words], b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            out.extend(w.model_copy() for w in words[i1:i2])
        elif tag == "replace":
            t0, t1 = words[i1].start, words[i2 - 1].end
            n = j2 - j1
            for k, tok in enumerate(new[j1:j2]):
                if t0 is None or t1 is None:
                    out.append(Word(text=tok))
                else:
                    step = (t1 - t0) / n
                    out.append(Word(start=round(t0 + k * step, 3), end=round(t0 + (k + 1) * step, 3), text=tok))
        elif tag == "insert":
            prev = next((w.end for w in reversed(out) if w.end is not None), None)
            t = prev if prev is not None else words[i1].start if i1 < len(words) else words[-1].end
            out.extend(Word(start=t, end=t, text=tok) for tok in new[j1:j2])
    return out


def _speaker_for(name: str, transcript: Transcript, interview: Interview) -> Speaker | None:
    key = " ".join(name.casefold().split())
    for sp in transcript.speakers:
        if " ".join(sp.name.casefold().split()) == key:
            return sp
    for p in interview.people:
        if key in {" ".join(n.casefold().split()) for n in (p.name, *p.aliases)}:
            used = {sp.id for sp in transcript.speakers}
            n = 1
            while f"S{n}" in used:
                n += 1
            sp = Speaker(id=f"S{n}", name=p.name, role=p.role, label=None)
            transcript.speakers.append(sp)
            return sp
    return None


def apply(
    transcript: Transcript,
    corrections: list[TranscriptCorrection],
    interview: Interview,
    *,
    md_path: Path | None = None,
    lines: list[int] | None = None,
) -> tuple[Transcript, list[TranscriptCorrection], list[TranscriptCorrection]]:
    """Apply corrections in order; returns (transcript, applied, not applied).

    A correction applies when its segment still has the same start and the ``before`` value
    (or already the ``after`` value). With ``md_path`` (fresh edits from transcript.md) a
    speaker name that is nobody in interview.yaml is an InputError at its line.
    """
    t = transcript.model_copy(deep=True)
    by_id = {seg.id: seg for seg in t.segments}
    applied: list[TranscriptCorrection] = []
    skipped: list[TranscriptCorrection] = []
    for k, c in enumerate(corrections):
        seg = by_id.get(c.segment)
        if seg is None or abs(seg.start - c.start) > 0.01:
            skipped.append(c.model_copy(update={"applied": False}))
            continue
        if c.field == "text":
            if markdown.normalise(seg.text) == markdown.normalise(c.after):
                applied.append(c.model_copy(update={"applied": True}))
                continue
            if markdown.normalise(seg.text) != markdown.normalise(c.before):
                skipped.append(c.model_copy(update={"applied": False}))
                continue
            seg.words = retime(seg.words, c.after)
            seg.text = c.after
            applied.append(c.model_copy(update={"applied": True}))
            continue
        current = next((sp for sp in t.speakers if sp.id == seg.speaker), None)
        current_name = current.name if current else seg.speaker
        if current_name not in (c.before, c.after):
            skipped.append(c.model_copy(update={"applied": False}))
            continue
        target = _speaker_for(c.after, t, interview)
        if target is None:
            if md_path is not None:
                raise InputError(
                    f"speaker '{c.after}' is nobody in interview.yaml",
                    "Use the name of a person in interview.yaml (people, or one of their aliases), "
                    "or add the person there first.",
                    path=md_path,
                    line=lines[k] if lines else None,
                )
            skipped.append(c.model_copy(update={"applied": False}))
            continue
        seg.speaker = target.id
        applied.append(c.model_copy(update={"applied": True}))
    used = {seg.speaker for seg in t.segments}
    t.speakers = [sp for sp in t.speakers if sp.id in used]
    return t, applied, skipped
