"""``kb transcribe``: recordings -> transcript.json (ASR, then diarisation + speaker assignment), or imports."""

from pipeline.stages.transcribe.stage import (
    TranscribeReport,
    inputs_hash,
    recognise_one,
    run,
    run_all,
    source_kind,
    transcribe_one,
)

__all__ = ["TranscribeReport", "inputs_hash", "recognise_one", "run", "run_all", "source_kind", "transcribe_one"]
