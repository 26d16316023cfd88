"""whisperX offline: load_model on the tiny local CTranslate2 Whisper, pyannote VAD (the
segmentation checkpoint whisperX ships), batched transcription. No alignment model exists
offline, so timings are segment-level and the backend says so."""

from __future__ import annotations

import shutil
import sys

import pytest

pytest.importorskip("whisperx", reason="needs the whisperx extra")

from pipeline.backends import audio as audio_io  # noqa: E402
from pipeline.backends.asr_whisperx import WhisperXBackend  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.errors import MissingDependencyError, MissingModelError  # noqa: E402
from tests.fakes.tiny_whisper import build_tiny_whisper, espeak_wav  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("ffmpeg")), reason="needs espeak-ng and ffmpeg (apt)"
)

TINY = {
    "asr.backend": "whisperx",
    "asr.beam_size": 1,
    "asr.temperature": 0.0,
    "asr.max_new_tokens": 16,
    "asr.condition_on_previous_text": False,
    "asr.compute_type": "float32",
    "asr.batch_size": 2,
}


def test_whisperx_transcribes_with_segment_timings(tmp_path):
    model = build_tiny_whisper(tmp_path / "tiny")
    speech = espeak_wav(tmp_path / "s.wav", "Restart the repo server, then sync again.", lead_silence_s=2.0)
    backend = WhisperXBackend(Settings.load(None, **{"asr.model": str(model), **TINY}))
    audio = audio_io.load(speech)
    result = backend.transcribe(audio.samples, "en", None, "ArgoCD")
    assert result.backend == "whisperx" and result.language == "en"
    assert result.segments
    for seg in result.segments:
        # pyannote VAD cut away the leading silence
        assert 1.0 <= seg.start < seg.end <= audio.duration and seg.text
        assert seg.words == []
    assert result.word_timings is False
    assert any("asr.align_model" in note for note in result.notes)
    assert backend.pipeline.options.hotwords == "ArgoCD"


def test_alignment_model_must_be_a_local_directory(tmp_path):
    model = build_tiny_whisper(tmp_path / "tiny")
    settings = Settings.load(None, **{"asr.model": str(model), "asr.align_model": str(tmp_path / "nope"), **TINY})
    with pytest.raises(MissingModelError) as exc:
        WhisperXBackend(settings)
    assert "asr.align_model" in exc.value.hint


def test_missing_extra_names_the_whisperx_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "whisperx", None)
    with pytest.raises(MissingDependencyError) as exc:
        WhisperXBackend(Settings.load(None, **{"asr.backend": "whisperx"}))
    assert exc.value.extra == "whisperx"
