"""Give every word a speaker, then cut segments where the speaker changes.

1. Each word goes to the diarisation turn it overlaps most (the nearest turn when it overlaps
   none, e.g. a word inside a VAD gap).
2. Smoothing. Diarisation boundaries are coarse (pyannote's frames, energy hangover), so a change
   of speaker often lands a word or two away from where the talk really changes hands, and the
   known failure is the interviewer's last words given to the expert (or the other way round).
   People hand over the floor in pauses, so each change point moves to the longest pause between
   words within ``smoothing_s`` of it (a sentence end wins a tie). Then a run of words shorter
   than ``smoothing_s`` that has no pause on either side is not a turn of its own: it goes to its
   neighbours' speaker.
3. ASR segments are re-split wherever the speaker changes, so a segment has one speaker.

Segments without word timings (whisperX without an alignment model) get the speaker of the turn
they overlap most, as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.backends.asr.base import AsrSegment, AsrWord
from pipeline.backends.diarise.base import Turn

PAUSE_S = 0.15  # a gap between words at least this long is a pause someone can take the floor in
SENTENCE_END = (".", "?", "!", "。", "？", "！")
DEFAULT_SPEAKER = "SPEAKER_00"


@dataclass
class LabelledWord:
    word: AsrWord
    speaker: str


@dataclass
class SpeakerSegment:
    start: float
    end: float
    speaker: str
    text: str
    words: list[LabelledWord] = field(default_factory=list)


def speaker_at(start: float, end: float, turns: list[Turn]) -> str | None:
    """The speaker of the turn overlapping [start, end] most; the nearest turn if none overlaps."""
    if not turns:
        return None
    best, best_overlap = None, 0.0
    for turn in turns:
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > best_overlap:
            best, best_overlap = turn.speaker, overlap
    if best is not None:
        return best
    mid = (start + end) / 2
    nearest = min(turns, key=lambda t: 0.0 if t.start <= mid <= t.end else min(abs(t.start - mid), abs(t.end - mid)))
    return nearest.speaker


def assign_speakers(segments: list[AsrSegment], turns: list[Turn], smoothing_s: float = 0.5) -> list[SpeakerSegment]:
    """Speaker-labelled segments (one speaker each) from ASR segments and diarisation turns."""
    turns = sorted(turns, key=lambda t: t.start)
    # Words of the whole recording in one sequence: a hand-over often spans an ASR segment boundary.
    flat: list[tuple[int, AsrWord]] = [(i, w) for i, seg in enumerate(segments) for w in seg.words]
    labels = [speaker_at(w.start, w.end, turns) or DEFAULT_SPEAKER for _, w in flat]
    if smoothing_s > 0 and len(flat) > 1:
        words = [w for _, w in flat]
        labels = _snap_changes_to_pauses(words, labels, smoothing_s)
        labels = _absorb_short_runs(words, labels, smoothing_s)
    by_segment: dict[int, list[LabelledWord]] = {}
    for (i, word), label in zip(flat, labels, strict=True):
        by_segment.setdefault(i, []).append(LabelledWord(word, label))

    out: list[SpeakerSegment] = []
    for i, seg in enumerate(segments):
        labelled = by_segment.get(i)
        if not labelled:
            out.append(
                SpeakerSegment(seg.start, seg.end, speaker_at(seg.start, seg.end, turns) or DEFAULT_SPEAKER, seg.text)
            )
            continue
        pieces = _split(labelled)
        if len(pieces) == 1:  # unchanged: keep the ASR's own text (its punctuation and spacing)
            out.append(SpeakerSegment(seg.start, seg.end, pieces[0][0].speaker, seg.text.strip(), pieces[0]))
            continue
        for piece in pieces:
            text = "".join(lw.word.text for lw in piece).strip()
            out.append(SpeakerSegment(piece[0].word.start, piece[-1].word.end, piece[0].speaker, text, piece))
    return out


def _split(labelled: list[LabelledWord]) -> list[list[LabelledWord]]:
    pieces: list[list[LabelledWord]] = [[labelled[0]]]
    for lw in labelled[1:]:
        if lw.speaker == pieces[-1][-1].speaker:
            pieces[-1].append(lw)
        else:
            pieces.append([lw])
    return pieces


def _gap(words: list[AsrWord], k: int) -> float:
    """The pause before word ``k``."""
    return max(0.0, words[k].start - words[k - 1].end)


def _snap_changes_to_pauses(words: list[AsrWord], labels: list[str], window: float) -> list[str]:
    labels = list(labels)
    changes = [k for k in range(1, len(words)) if labels[k] != labels[k - 1]]
    for idx, b in enumerate(changes):
        before, after = labels[b - 1], labels[b]
        at = (words[b - 1].end + words[b].start) / 2
        lo = changes[idx - 1] + 1 if idx > 0 else 1  # never cross the neighbouring change points
        hi = changes[idx + 1] - 1 if idx + 1 < len(changes) else len(words) - 1

        def score(k: int) -> float:
            return _gap(words, k) + (0.1 if words[k - 1].text.rstrip().endswith(SENTENCE_END) else 0.0)

        # pauses (the gaps between words k-1 and k) that lie within ``window`` of the change point
        candidates = [k for k in range(lo, hi + 1) if words[k - 1].end - window <= at <= words[k].start + window]
        best = max(candidates, key=lambda k: (score(k), -abs(k - b)), default=b)
        if best != b and _gap(words, best) >= PAUSE_S and score(best) > score(b):
            for k in range(min(best, b), max(best, b)):
                labels[k] = before if best > b else after
            changes[idx] = best
    return labels


def _absorb_short_runs(words: list[AsrWord], labels: list[str], window: float) -> list[str]:
    labels = list(labels)
    runs: list[tuple[int, int]] = []  # [start, end) word ranges of one speaker
    start = 0
    for k in range(1, len(words) + 1):
        if k == len(words) or labels[k] != labels[start]:
            runs.append((start, k))
            start = k
    for r, (a, b) in enumerate(runs):
        if r == 0 or r == len(runs) - 1:
            continue
        prev_label, next_label = labels[runs[r - 1][0]], labels[runs[r + 1][0]]
        short = words[b - 1].end - words[a].start < window
        no_pause = _gap(words, a) < PAUSE_S and _gap(words, b) < PAUSE_S
        if short and no_pause and prev_label == next_label:
            for k in range(a, b):
                labels[k] = prev_label
    return labels
