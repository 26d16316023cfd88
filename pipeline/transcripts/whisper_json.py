"""whisper / faster-whisper / whisper-timestamped / whisperX JSON -> turns, validated with pydantic.

openai-whisper writes words as ``{"word", "start", "end", "probability"}``, whisper-timestamped
as ``{"text", ..., "confidence"}``, whisperX as ``{"word", "start", "end", "score", "speaker"}``
(start/end missing for words it could not align, e.g. numbers). One lenient model reads all of
them; each whisper segment stays one segment.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from pipeline import safeload
from pipeline.config import LimitsSettings, over_budget
from pipeline.errors import InputError, InputLimitError
from pipeline.models import Word
from pipeline.transcripts.builder import Turn
from pipeline.transcripts.vtt import read_text


class _WWord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(validation_alias=AliasChoices("word", "text"))
    start: float | None = None
    end: float | None = None
    score: float | None = Field(default=None, validation_alias=AliasChoices("score", "probability", "confidence"))
    speaker: str | None = None


class _WSegment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    speaker: str | None = None
    words: list[_WWord] = Field(default_factory=list)


class _WDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")
    segments: list[_WSegment]
    language: str | None = None


def _line_of_segment(text: str, index: int) -> int | None:
    """Best-effort line of the index-th segment object (for messages about one bad segment)."""
    pos = text.find('"segments"')
    if pos < 0:
        return None
    depth = 0
    count = -1
    for i in range(text.find("[", pos) + 1, len(text)):
        ch = text[i]
        if ch == "{":
            if depth == 0:
                count += 1
                if count == index:
                    return text.count("\n", 0, i) + 1
            depth += 1
        elif ch == "}":
            depth -= 1
    return None


def read_doc(path: Path, limits: LimitsSettings | None = None) -> tuple[list[Turn], str | None, str]:
    """(turns, language, flavour) where flavour is 'whisperx' when speakers are present.

    Read through ``safeload`` (depth, number length, surrogates) and ``limits`` (segments, words)
    before pydantic builds a model per segment and word.
    """
    limits = limits or LimitsSettings()
    text = read_text(path)
    data = _load(path, text, limits)
    try:
        doc = _WDoc.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        line = (
            _line_of_segment(text, loc[1])
            if len(loc) > 1 and loc[0] == "segments" and isinstance(loc[1], int)
            else None
        )
        raise InputError(
            f"not a whisper/whisperX transcript: {'.'.join(str(p) for p in loc)}: {err['msg']}",
            'Expected {"segments": [{"start", "end", "text", "words"?, "speaker"?}, ...]}.',
            path=path,
            line=line,
        ) from None
    # kb's own transcript.json (another workspace): speakers are ids; use their names as labels
    names: dict[str, str] = {}
    if isinstance(data.get("speakers"), list):
        names = {sp["id"]: sp.get("name") or sp["id"] for sp in data["speakers"] if isinstance(sp, dict) and "id" in sp}
    turns = [_turn(path, text, k, seg, names) for k, seg in enumerate(doc.segments)]
    has_speakers = any(t.label is not None for t in turns)
    return turns, doc.language, ("whisperx" if has_speakers else "whisper")


def _load(path: Path, text: str, limits: LimitsSettings) -> Any:
    """The parsed JSON (a bare segment list wrapped in a dict), within the size, segment and word limits."""
    bounds = safeload.Limits(max_bytes=max(limits.max_transcript_bytes, len(text)))
    try:
        data = safeload.load_json(text, limits=bounds)
    except InputLimitError as exc:
        raise InputLimitError(exc.message, exc.hint, path=path, line=exc.line) from None
    except InputError as exc:
        message = exc.message
        if message.startswith("not valid JSON: "):
            message = f"not valid JSON ({message.removeprefix('not valid JSON: ')})"
        raise InputError(
            message,
            "The file is truncated or not JSON; export it again from the ASR tool.",
            path=path,
            line=exc.line,
            column=exc.column,
        ) from None
    if isinstance(data, list):  # some tools write the segment list alone
        data = {"segments": data}
    segments = data.get("segments") if isinstance(data, dict) else None
    if isinstance(segments, list):
        if len(segments) > limits.max_segments:
            raise over_budget(
                "the number of segments", len(segments), "limits.max_segments", limits.max_segments, path=path
            )
        words = sum(len(s["words"]) for s in segments if isinstance(s, dict) and isinstance(s.get("words"), list))
        if words > limits.max_words:
            raise over_budget("the number of words", words, "limits.max_words", limits.max_words, path=path)
    return data


def _turn(path: Path, text: str, k: int, seg: _WSegment, names: dict[str, str]) -> Turn:
    """One segment as a Turn; its speaker is the segment's, else the majority of its words'."""
    if seg.end < seg.start:
        raise InputError(
            f"segment {k} ends ({seg.end}) before it starts ({seg.start})",
            "The JSON is damaged; export it again.",
            path=path,
            line=_line_of_segment(text, k),
        )
    seg_words = [
        Word(
            start=w.start,
            end=w.end,
            text=w.text.strip(),
            score=w.score,
            speaker=names.get(w.speaker, w.speaker) if w.speaker else None,
        )
        for w in seg.words
        if w.text.strip()
    ]
    speaker = seg.speaker
    if speaker is None:
        votes = Counter(w.speaker for w in seg_words if w.speaker)
        speaker = votes.most_common(1)[0][0] if votes else None
    speaker = names.get(speaker, speaker) if speaker else speaker
    return Turn(label=speaker, start=seg.start, end=seg.end, text=" ".join(seg.text.split()), words=seg_words)
