"""faster-whisper (CTranslate2) ASR: Silero VAD, word timestamps, optional batched pipeline.

The model loads once per backend (``cpu_threads=settings.threads``: 1 is fastest on shared
machines) and is reused for every interview of a ``kb transcribe`` batch.
"""

from __future__ import annotations

import numpy as np

from pipeline.backends.asr.base import (
    AsrBackend,
    AsrResult,
    AsrSegment,
    AsrWord,
    clamp,
    decode_options,
    import_faster_whisper,
    resolve_ct2_model,
)
from pipeline.config import Settings
from pipeline.errors import BackendError


class FasterWhisperBackend(AsrBackend):
    name = "faster-whisper"

    def __init__(self, settings: Settings):
        fw = import_faster_whisper()
        self.settings = settings
        self.model_id = settings.asr.model
        path = resolve_ct2_model(settings)
        try:
            self.model = fw.WhisperModel(
                path,
                device=settings.asr.device,
                compute_type=settings.asr.compute_type,
                cpu_threads=settings.threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(
                f"faster-whisper could not load the model {path}: {exc}",
                "Check 'asr.device' and 'asr.compute_type' (e.g. cpu + int8 or float32).",
            ) from None
        self.batched = fw.BatchedInferencePipeline(self.model) if settings.asr.batch_size > 0 else None

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        initial_prompt: str | None,
        hotwords: str | None,
    ) -> AsrResult:
        asr = self.settings.asr
        options = decode_options(self.settings)
        options.update(
            language=language,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            word_timestamps=asr.word_timestamps,
            vad_filter=asr.vad,
        )
        if self.batched is not None:
            runner, options["batch_size"] = self.batched.transcribe, asr.batch_size
        else:
            runner = self.model.transcribe
        try:
            segments, info = runner(audio, **options)
            segments = list(self.progress(segments) if self.progress else segments)  # decoding happens here
        except ValueError as exc:  # e.g. an unknown language code
            raise BackendError(
                f"faster-whisper rejected the request: {exc}", "Check 'language' in interview.yaml."
            ) from None
        duration = float(info.duration)
        out: list[AsrSegment] = []
        for seg in segments:
            words = [
                AsrWord(clamp(w.start, duration), clamp(w.end, duration), w.word, round(float(w.probability), 4))
                for w in (seg.words or [])
                if w.word.strip()
            ]
            text = seg.text.strip()
            if not text or float(seg.start) >= duration:  # nothing said, or placed past the end
                continue
            out.append(AsrSegment(clamp(seg.start, duration), clamp(seg.end, duration), text, words))
        return AsrResult(
            segments=out,
            language=info.language,
            backend=self.name,
            model=self.model_id,
            duration=duration,
            word_timings=asr.word_timestamps,
        )

    def close(self) -> None:
        self.batched = None
        self.model = None
