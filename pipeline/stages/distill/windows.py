"""Speaker turns and context windows for distillation.

A turn is a run of consecutive segments by one speaker. A window is a list of whole turns that
fits the token budget; consecutive windows share ``overlap`` turns so an answer that starts at
the end of one window is seen whole in the next. Each window's text (and so its cache key)
depends only on its own turns: correcting one passage of a transcript changes only the windows
that hold it, and only those are sent to the LLM again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.backends.llm.tokens import count_tokens
from pipeline.models import Transcript
from pipeline.workspace import sha256_text


@dataclass
class Turn:
    index: int
    speaker_id: str
    name: str
    role: str
    start: float
    end: float
    text: str
    segment_ids: list[int] = field(default_factory=list)


@dataclass
class Window:
    index: int
    turns: list[Turn]
    text: str
    tokens: int

    @property
    def start(self) -> float:
        return self.turns[0].start

    @property
    def end(self) -> float:
        return self.turns[-1].end

    def key(self, *parts: str) -> str:
        """Cache key: the window text plus whatever else shapes the answer (prompt, model)."""
        return sha256_text("\x1f".join([self.text, *parts]))


BUCKET = 32  # tokens


def turns(transcript: Transcript) -> list[Turn]:
    """Merge consecutive segments of the same speaker into turns."""
    out: list[Turn] = []
    for seg in transcript.segments:
        text = seg.text.strip()
        if not text:
            continue
        if out and out[-1].speaker_id == seg.speaker:
            last = out[-1]
            last.text = f"{last.text} {text}"
            last.end = max(last.end, seg.end)
            last.segment_ids.append(seg.id)
            continue
        sp = transcript.speaker(seg.speaker)
        out.append(
            Turn(
                index=len(out),
                speaker_id=seg.speaker,
                name=sp.name if sp else seg.speaker,
                role=sp.role if sp else "unknown",
                start=seg.start,
                end=seg.end,
                text=text,
                segment_ids=[seg.id],
            )
        )
    return out


def render_turn(turn: Turn) -> str:
    return f"[{turn.start:.1f}-{turn.end:.1f}] {turn.name} ({turn.role}): {turn.text}"


def _split_turn(turn: Turn, transcript: Transcript, budget: int) -> list[Turn]:
    """A turn longer than the budget, cut into parts along its segments."""
    by_id = {s.id: s for s in transcript.segments}
    parts: list[Turn] = []
    for sid in turn.segment_ids:
        seg = by_id[sid]
        text = seg.text.strip()
        if parts and count_tokens(render_turn(parts[-1]) + " " + text) <= budget:
            parts[-1].text += " " + text
            parts[-1].end = max(parts[-1].end, seg.end)
            parts[-1].segment_ids.append(sid)
        else:
            parts.append(Turn(turn.index, turn.speaker_id, turn.name, turn.role, seg.start, seg.end, text, [sid]))
    return parts


def windows(transcript: Transcript, budget_tokens: int, overlap_turns: int = 2) -> list[Window]:
    """Whole turns packed into windows of at most ``budget_tokens`` (a lone giant turn is split)."""
    budget = max(budget_tokens, 64)
    units: list[Turn] = []
    for turn in turns(transcript):
        if count_tokens(render_turn(turn)) > budget:
            units.extend(_split_turn(turn, transcript, budget))
        else:
            units.append(turn)
    # Sizes are rounded up to a bucket, so a small correction rarely moves a window boundary
    # (which would change, and re-send, every later window too).
    sizes = [-(-(count_tokens(render_turn(t)) + 1) // BUCKET) * BUCKET for t in units]
    out: list[Window] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        while j < len(units) and (used + sizes[j] <= budget or j == i):
            used += sizes[j]
            j += 1
        chunk = units[i:j]
        text = "\n".join(render_turn(t) for t in chunk)
        out.append(Window(index=len(out), turns=chunk, text=text, tokens=used))
        if j >= len(units):
            break
        # step back by the overlap, but always move forward
        i = max(j - overlap_turns, i + 1)
    return out
