"""whisper / faster-whisper / whisper-timestamped / whisperX JSON -> turns, validated with pydantic.

openai-whisper writes words as ``{"word", "start", "end", "probability"}``, whisper-timestamped
as ``{"text", ..., "confidence"}``, whisperX as ``{"word", "start", "end", "score", "speaker"}``
(start/end missing for words it could not align, e.g. numbers). One lenient model reads all of
them; each whisper segment stays one segment.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import InputError
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


def read_doc(path: Path) -> tuple[list[Turn], str | None, str]:
    """(turns, language, flavour) where flavour is 'whisperx' when speakers are present."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON ({exc.msg})",
            "The file is truncated or not JSON; export it again from the ASR tool.",
            path=path,
            line=exc.lineno,
            column=exc.colno,
        ) from None
    if isinstance(data, list):  # some tools write the segment list alone
        data = {"segments": data}
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
    turns: list[Turn] = []
    has_speakers = False
    for k, seg in enumerate(doc.segments):
        if seg.end < seg.start:
            raise InputError(
                f"segment {k} ends ({seg.end}) before it starts ({seg.start})",
                "The JSON is damaged; export it again.",
                path=path,
                line=_line_of_segment(text, k),
            )
        words = [
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
            votes = Counter(w.speaker for w in words if w.speaker)
            speaker = votes.most_common(1)[0][0] if votes else None
        speaker = names.get(speaker, speaker) if speaker else speaker
        has_speakers = has_speakers or speaker is not None
        turns.append(Turn(label=speaker, start=seg.start, end=seg.end, text=" ".join(seg.text.split()), words=words))
    return turns, doc.language, ("whisperx" if has_speakers else "whisper")
