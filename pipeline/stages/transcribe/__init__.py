"""``kb transcribe``: recordings -> transcript.json (ASR + diarisation + speaker assignment), or imports."""

from pipeline.stages.transcribe.stage import TranscribeReport, inputs_hash, run, run_all, transcribe_one

__all__ = ["TranscribeReport", "inputs_hash", "run", "run_all", "transcribe_one"]
