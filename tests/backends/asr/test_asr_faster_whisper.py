"""The real faster-whisper path, offline: a tiny random CTranslate2 Whisper built at test time
(tests/fakes/tiny_whisper.py) transcribes espeak-ng speech through kb's backend. Random weights
write nonsense, but mel features, Silero VAD, decoding, timestamps and DTW word alignment all run.
"""

from __future__ import annotations

import shutil
import sys
import time

import pytest

from pipeline.backends import audio as audio_io
from pipeline.backends.asr.faster_whisper import FasterWhisperBackend
from pipeline.config import Settings
from pipeline.errors import MissingDependencyError, MissingModelError
from pipeline.models import Interview
from pipeline.stages.transcribe.speech import vocabulary_hints
from tests.fakes.tiny_whisper import TINY, build_tiny_whisper, espeak_wav

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("ffmpeg")), reason="needs espeak-ng and ffmpeg (apt)"
)

SILENCE_S = 3.0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_whisper(tmp_path_factory.mktemp("asr") / "tiny-whisper")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Three seconds of silence, then speech: VAD must skip the silence."""
    return espeak_wav(
        tmp_path_factory.mktemp("audio") / "speech.wav",
        "When you see deadline exceeded, it is almost always the repo server. Restart it first.",
        lead_silence_s=SILENCE_S,
    )


@pytest.fixture(scope="module")
def backend(tiny_model):
    settings = Settings.load(None, **{"asr.model": str(tiny_model), **TINY})
    yield FasterWhisperBackend(settings)


def test_transcribes_with_segments_word_timestamps_and_vad(backend, speech):
    audio = audio_io.load(speech)
    result = backend.transcribe(audio.samples, "en", None, None)
    assert result.backend == "faster-whisper" and result.language == "en"
    assert result.duration == pytest.approx(audio.duration, abs=0.01)
    assert result.segments, "the tiny model always emits tokens for speech"
    for seg in result.segments:
        assert type(seg.start) is float and type(seg.end) is float  # not numpy floats
        # Silero VAD dropped the leading silence: timestamps are mapped back into the speech
        # (400 ms of VAD padding before it).
        assert SILENCE_S - 0.5 <= seg.start <= seg.end <= audio.duration
        assert seg.text
    words = [w for seg in result.segments for w in seg.words]
    assert words, "word_timestamps=True runs DTW alignment over the cross-attention"
    for seg in result.segments:
        for w in seg.words:
            assert seg.start - 0.01 <= w.start <= w.end <= seg.end + 0.01
            assert 0.0 <= w.score <= 1.0
    assert result.word_timings is True


def test_model_is_reused_and_decoding_is_deterministic(backend, speech):
    audio = audio_io.load(speech)
    model = backend.model
    first = backend.transcribe(audio.samples, "en", None, None)
    second = backend.transcribe(audio.samples, "en", None, None)
    assert backend.model is model
    assert [(s.start, s.end, s.text) for s in first.segments] == [(s.start, s.end, s.text) for s in second.segments]


def test_vad_off_transcribes_the_silence_too(tiny_model, speech):
    settings = Settings.load(None, **{"asr.model": str(tiny_model), "asr.vad": False, **TINY})
    result = FasterWhisperBackend(settings).transcribe(audio_io.load(speech).samples, "en", None, None)
    assert result.segments
    assert min(s.start for s in result.segments) < SILENCE_S - 0.5


def test_batched_pipeline_and_vocabulary_hints(tiny_model, speech):
    settings = Settings.load(None, **{"asr.model": str(tiny_model), "asr.batch_size": 2, **TINY})
    backend = FasterWhisperBackend(settings)
    assert backend.batched is not None
    interview = Interview(id="x", title="x", date="2026-01-01", vocabulary=["ArgoCD", "repo server"])
    prompt, hotwords = vocabulary_hints(settings, interview)
    assert (prompt, hotwords) == (None, "ArgoCD, repo server")
    result = backend.transcribe(audio_io.load(speech).samples, "en", prompt, hotwords)
    assert result.segments and all(s.start >= SILENCE_S - 0.5 for s in result.segments)

    both = Settings.load(None, **{"asr.vocabulary_hint": "both"})
    assert vocabulary_hints(both, interview) == ("Glossary: ArgoCD, repo server.", "ArgoCD, repo server")
    off = Settings.load(None, **{"asr.vocabulary_hint": "off"})
    assert vocabulary_hints(off, interview) == (None, None)


def test_missing_model_directory_names_the_config_key(tmp_path):
    with pytest.raises(MissingModelError) as exc:
        FasterWhisperBackend(Settings.load(None, **{"asr.model": str(tmp_path / "nowhere")}))
    assert "asr.model" in exc.value.hint


def test_model_directory_without_tokenizer_is_refused_not_downloaded(tiny_model, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_model, partial)
    (partial / "tokenizer.json").unlink()  # faster-whisper would fetch it from the hub
    with pytest.raises(MissingModelError) as exc:
        FasterWhisperBackend(Settings.load(None, **{"asr.model": str(partial)}))
    assert "tokenizer.json" in exc.value.message and "asr.model" in exc.value.hint


def test_model_name_not_in_local_cache_fails_fast_without_download(tmp_path):
    started = time.perf_counter()
    with pytest.raises(MissingModelError) as exc:
        FasterWhisperBackend(Settings.load(None, **{"asr.model": "large-v3", "asr.download_root": str(tmp_path)}))
    assert time.perf_counter() - started < 10
    assert "asr.model" in exc.value.hint and "Systran/faster-whisper-large-v3" in exc.value.hint
    assert not any(tmp_path.iterdir()), "nothing was downloaded into the cache"


def test_missing_extra_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if the package were not installed
    with pytest.raises(MissingDependencyError) as exc:
        FasterWhisperBackend(Settings.load(None))
    assert exc.value.extra == "asr" and "kb[asr]" in exc.value.hint
