"""The speech pipeline's intermediate: one recording's ASR segments (words with times), on disk.

ASR is the slow half of transcribing a recording; diarisation and word-speaker assignment are the
other. Keeping ASR's output as a content-addressed file under ``.kb/state/transcribe/asr/`` lets the
two halves run apart (a worker on the ``asr`` queue writes it, one on ``diarise`` reads it) and lets
``kb transcribe`` redo only the second half when only the people or diarisation settings changed.
The key is the ASR part of the transcript's freshness inputs: the recording's hash, the ASR
settings, the interview's language and vocabulary. Files are written atomically; an older key's
file for the same interview is removed when a new one is written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pipeline.backends.asr.base import AsrResult, AsrSegment, AsrWord
from pipeline.config import Settings
from pipeline.models import Interview
from pipeline.workspace import Workspace, atomic_write_json, sha256_json

#: Bump when the file's shape changes (older files are then simply not found).
VERSION = 1


def asr_inputs(settings: Settings, iv: Interview, source_sha: str) -> dict[str, Any]:
    """What ASR's output depends on (a subset of the transcript's freshness inputs)."""
    return {
        "source": source_sha,
        "asr": settings.asr.model_dump(mode="json"),
        "language": iv.language,
        "vocabulary": iv.vocabulary,
    }


def path(ws: Workspace, interview_id: str, settings: Settings, iv: Interview, source_sha: str) -> Path:
    key = sha256_json({"version": VERSION, **asr_inputs(settings, iv, source_sha)})[:32]
    return ws.stage_state_dir("transcribe") / "asr" / f"{interview_id}--{key}.json"


def write(target: Path, result: AsrResult, *, run: str | None = None) -> None:
    """Write ``result`` atomically (``run``: the Celery run that wrote it, for forced runs' redeliveries)."""
    atomic_write_json(target, {"version": VERSION, "run": run, "result": dataclasses.asdict(result)})
    interview = target.name.rsplit("--", 1)[0]
    for old in target.parent.glob(f"{interview}--*.json"):
        if old != target and old.name.rsplit("--", 1)[0] == interview:
            old.unlink(missing_ok=True)


def read(target: Path, *, run: str | None = None) -> AsrResult | None:
    """The stored result, or None when absent or unreadable (or, with ``run``, written by another run)."""
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
        if data.get("version") != VERSION or (run is not None and data.get("run") != run):
            return None
        raw = dict(data["result"])
        segments = [
            AsrSegment(
                start=s["start"], end=s["end"], text=s["text"], words=[AsrWord(**w) for w in s.get("words") or []]
            )
            for s in raw.pop("segments")
        ]
        return AsrResult(segments=segments, **raw)
    except (OSError, ValueError, KeyError, TypeError):
        return None
