"""whisperX offline: load_model on the tiny local CTranslate2 Whisper, pyannote VAD (the
segmentation checkpoint whisperX ships), batched transcription. No alignment model exists
offline, so timings are segment-level and the backend says so."""

from __future__ import annotations

import shutil
import sys

import pytest

pytest.importorskip("whisperx", reason="needs the whisperx extra")

from pipeline.backends import audio as audio_io  # noqa: E402
from pipeline.backends.asr.whisperx import WhisperXBackend  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.errors import MissingDependencyError, MissingModelError  # noqa: E402
from tests.fakes.tiny_whisper import TINY as TINY_DECODING  # noqa: E402
from tests.fakes.tiny_whisper import build_tiny_wav2vec2, build_tiny_whisper, espeak_wav, punkt_params  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("ffmpeg")), reason="needs espeak-ng and ffmpeg (apt)"
)

TINY = {**TINY_DECODING, "asr.backend": "whisperx", "asr.batch_size": 2}


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


def test_word_alignment_with_a_local_model(tmp_path, monkeypatch):
    """asr.align_model as a local directory: whisperX's wav2vec2 CTC alignment runs for real (a tiny
    random model, so timings are arbitrary but inside the segment and ordered)."""
    import nltk

    model = build_tiny_whisper(tmp_path / "tiny")
    aligner = build_tiny_wav2vec2(tmp_path / "wav2vec2")
    settings = Settings.load(None, **{"asr.model": str(model), "asr.align_model": str(aligner), **TINY})
    backend = WhisperXBackend(settings)
    speech = espeak_wav(tmp_path / "s.wav", "restart the repo server")
    audio = audio_io.load(speech)
    segment = {"start": 0.0, "end": round(audio.duration, 3), "text": " restart the repo server"}

    # whisperX would download NLTK's punkt_tab here; kb refuses and names the fix
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty-nltk")])
    with pytest.raises(MissingModelError) as exc:
        backend.align([dict(segment)], audio.samples, "en")
    assert "punkt_tab" in exc.value.message and "asr.align_model" in exc.value.hint

    monkeypatch.setattr(nltk.data, "path", [str(punkt_params(tmp_path / "nltk"))])
    result = backend.align([dict(segment)], audio.samples, "en")
    assert result.word_timings is True and result.notes == []
    (seg,) = result.segments
    assert [w.text.strip() for w in seg.words] == ["restart", "the", "repo", "server"]
    assert all(seg.start <= w.start <= w.end <= seg.end for w in seg.words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(seg.words, seg.words[1:], strict=False))
