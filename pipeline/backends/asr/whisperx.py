"""whisperX ASR: pyannote VAD cuts the audio, faster-whisper transcribes the chunks in batches,
and a wav2vec2 model aligns words, only when ``asr.align_model`` is a local directory.

Without an alignment model whisperX gives segment-level timings only (no words); the speech
pipeline says so, and speaker assignment then works per segment. whisperX decodes each VAD chunk
once (no temperature fallback, ``max_new_tokens`` unused): ``asr.beam_size`` is what tunes it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

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
from pipeline.errors import BackendError, MissingDependencyError, MissingModelError


def import_whisperx():
    import_faster_whisper("Transcribing with whisperX")  # whisperX builds on it
    try:
        import whisperx
    except ImportError:
        raise MissingDependencyError("whisperx", "whisperx", "Transcribing with whisperX") from None
    logging.getLogger("whisperx").setLevel(logging.WARNING)  # kb's reporter says what matters
    return whisperx


class WhisperXBackend(AsrBackend):
    name = "whisperx"

    def __init__(self, settings: Settings):
        wx = import_whisperx()
        import torch

        torch.set_num_threads(settings.threads)
        self.wx = wx
        self.settings = settings
        self.model_id = settings.asr.model
        path = resolve_ct2_model(settings)
        asr_options = decode_options(settings)
        if "temperature" in asr_options:
            asr_options["temperatures"] = [asr_options.pop("temperature")]
        self.align_dir = self._align_dir(settings)
        try:
            self.pipeline = wx.load_model(
                path,
                device=settings.asr.device,
                compute_type=settings.asr.compute_type,
                asr_options=asr_options,
                vad_method="pyannote",
                threads=settings.threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise BackendError(
                f"whisperX could not load the model {path}: {exc}",
                "Check 'asr.model', 'asr.device' and 'asr.compute_type'.",
            ) from None
        self._aligners: dict[str, tuple] = {}

    @staticmethod
    def _align_dir(settings: Settings) -> Path | None:
        if not settings.asr.align_model:
            return None
        path = Path(settings.asr.align_model).expanduser()
        if not path.is_dir():
            raise MissingModelError(
                f"The whisperX alignment model directory '{settings.asr.align_model}' does not exist.",
                "Set 'asr.align_model' to a local wav2vec2 CTC model directory (e.g. a download of "
                "jonatasgrosman/wav2vec2-large-xlsr-53-english), or unset it for segment-level timings.",
            )
        return path

    def _aligner(self, language: str):
        if language not in self._aligners:
            self._check_sentence_model(language)
            try:
                self._aligners[language] = self.wx.load_align_model(
                    language, self.settings.asr.device, model_name=str(self.align_dir), model_cache_only=True
                )
            except (ValueError, OSError) as exc:
                raise MissingModelError(
                    f"whisperX could not load the alignment model {self.align_dir}: {exc}",
                    "Check 'asr.align_model': a local wav2vec2 CTC model directory for the interview's language.",
                ) from None
        return self._aligners[language]

    @staticmethod
    def _check_sentence_model(language: str) -> None:
        """whisperX's alignment splits sentences with NLTK's punkt_tab and *downloads* it when
        missing; kb refuses to download at run time, so it checks first."""
        import nltk
        from whisperx.alignment import PUNKT_LANGUAGES

        punkt = PUNKT_LANGUAGES.get(language, "english")
        try:
            nltk.data.find(f"tokenizers/punkt_tab/{punkt}/")
        except LookupError:
            raise MissingModelError(
                f"whisperX word alignment needs NLTK's punkt_tab sentence model ({punkt}), which is not installed.",
                "Install it once: python -m nltk.downloader punkt_tab (or set NLTK_DATA to a folder holding "
                "tokenizers/punkt_tab), or unset 'asr.align_model' for segment-level timings.",
            ) from None

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        initial_prompt: str | None,
        hotwords: str | None,
    ) -> AsrResult:
        self.pipeline.options = dataclasses.replace(
            self.pipeline.options, initial_prompt=initial_prompt, hotwords=hotwords
        )
        batch = max(1, self.settings.asr.batch_size)
        try:
            result = self.pipeline.transcribe(audio, batch_size=batch, language=language)
        except ValueError as exc:
            raise BackendError(f"whisperX rejected the request: {exc}", "Check 'language' in interview.yaml.") from None
        lang = result.get("language") or language
        notes: list[str] = []
        if self.align_dir is None:
            notes.append(
                "whisperX without 'asr.align_model': segment-level timings only, no word timestamps "
                "(speakers are assigned per segment). Set asr.align_model to a local wav2vec2 model for words."
            )
            return self._result(result["segments"], audio, lang, notes)
        return self.align(result["segments"], audio, lang, notes)

    def align(
        self, segments: list[dict], audio: np.ndarray, language: str, notes: list[str] | None = None
    ) -> AsrResult:
        """Word timings for whisperX segments ({start, end, text}) with the local alignment model."""
        notes = list(notes or [])
        if segments:
            model, metadata = self._aligner(language)
            segments = self.wx.align(segments, model, metadata, audio, self.settings.asr.device)["segments"]
        unaligned = sum(1 for seg in segments if str(seg.get("text", "")).strip() and not seg.get("words"))
        if unaligned:
            notes.append(f"whisperX could not align the words of {unaligned} segment(s): segment-level timings there.")
        return self._result(segments, audio, language, notes)

    def _result(self, segments: list[dict], audio: np.ndarray, language: str | None, notes: list[str]) -> AsrResult:
        duration = len(audio) / 16_000
        out: list[AsrSegment] = []
        for seg in segments:
            text = str(seg.get("text", "")).strip()
            if not text:
                continue
            words = [
                AsrWord(clamp(w["start"], duration), clamp(w["end"], duration), " " + str(w["word"]).strip(), _score(w))
                for w in seg.get("words", [])
                if "start" in w and "end" in w and str(w.get("word", "")).strip()
            ]
            out.append(AsrSegment(clamp(seg["start"], duration), clamp(seg["end"], duration), text, words))
        return AsrResult(
            segments=out,
            language=language,
            backend=self.name,
            model=self.model_id,
            duration=duration,
            word_timings=any(seg.words for seg in out),
            notes=notes,
        )

    def close(self) -> None:
        self.pipeline = None
        self._aligners.clear()


def _score(word: dict) -> float | None:
    score = word.get("score")
    if score is None or score != score:  # NaN for words the aligner could not score
        return None
    return round(float(score), 4)
