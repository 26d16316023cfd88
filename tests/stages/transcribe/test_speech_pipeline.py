"""SpeechPipeline end to end (tiny real faster-whisper + real diarisers) and bad recordings."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from pipeline.backends import audio as audio_io
from pipeline.config import Settings
from pipeline.errors import InputError, NotFoundError
from pipeline.models import Interview, Transcript
from pipeline.reporting import Reporter
from pipeline.stages.transcribe.speech import SpeechPipeline, diariser_kind
from tests.conftest import DATA
from tests.fakes.tiny_whisper import TINY, build_tiny_whisper, espeak_wav

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("ffmpeg")), reason="needs espeak-ng and ffmpeg (apt)"
)

STEREO = DATA / "asr" / "stereo_diarization.wav"
INTERVIEW = Interview(id="2026-03-04-alice", title="Alice on sync", date="2026-03-04", vocabulary=["ArgoCD"])


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    model = build_tiny_whisper(tmp_path_factory.mktemp("asr") / "tiny-whisper")
    return Settings.load(None, **{"asr.model": str(model), **TINY})


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return espeak_wav(
        tmp_path_factory.mktemp("audio") / "talk.wav", "The repo server runs out of memory. Raise its limit."
    )


class ProgressReporter(Reporter):
    """Records what was shown as progress (the CLI's reporter draws a bar instead)."""

    def __init__(self):
        super().__init__()
        self.progressed: list[tuple[str, int]] = []

    def progress(self, items, description, total=None):
        count = 0
        for item in items:
            count += 1
            yield item
        self.progressed.append((description, count))


def test_recording_to_transcript_with_raw_speakers(settings, speech):
    reporter = ProgressReporter()
    with SpeechPipeline(settings, reporter) as pipeline:
        transcript = pipeline.transcribe(speech, INTERVIEW)
    Transcript.model_validate(transcript.model_dump())  # the canonical shape
    src = transcript.source
    assert (src.kind, src.backend, src.language, src.timing, src.file) == (
        "asr",
        "faster-whisper",
        "en",
        "measured",
        "talk.wav",
    )
    assert src.model == settings.asr.model and len(src.sha256) == 64
    assert transcript.interview == INTERVIEW.id
    # mono and no pyannote configured: one speaker, said as a warning
    assert [(s.id, s.label, s.role) for s in transcript.speakers] == [("S1", "SPEAKER_00", "unknown")]
    assert any("one speaker" in msg for level, msg in reporter.lines if level == "warning")
    # long ASR work is shown as progress, one tick per decoded segment
    assert [d for d, _ in reporter.progressed] == ["2026-03-04-alice: transcribing 0.1 min"]
    assert reporter.progressed[0][1] >= len(transcript.segments)
    assert transcript.segments and all(seg.speaker == "S1" for seg in transcript.segments)
    assert [seg.id for seg in transcript.segments] == list(range(len(transcript.segments)))
    words = [w for seg in transcript.segments for w in seg.words]
    assert words and all(w.speaker == "S1" and w.start <= w.end for w in words)


def test_stereo_recording_gets_one_speaker_per_channel_and_models_load_once(settings, speech):
    reporter = Reporter()
    pipeline = SpeechPipeline(settings, reporter)
    try:
        stereo = pipeline.transcribe(STEREO, INTERVIEW)
        asr = pipeline.asr
        pipeline.transcribe(speech, INTERVIEW)
        assert pipeline.asr is asr
    finally:
        pipeline.close()
    assert pipeline._asr is None
    assert sum("loaded ASR model" in msg for _, msg in reporter.lines) == 1
    assert {s.label for s in stereo.speakers} <= {"CH0", "CH1"}
    assert any("diarised (channels)" in msg and "2 speaker(s)" in msg for _, msg in reporter.lines)
    labels = {s.id: s.label for s in stereo.speakers}
    for seg in stereo.segments:
        assert labels[seg.speaker] in ("CH0", "CH1")


def test_auto_diariser_choice(tmp_path, settings):
    stereo = audio_io.load(STEREO)
    assert diariser_kind(settings, stereo) == "channels"
    dual = tmp_path / "dual.wav"  # a phone's "stereo": the same mic on both channels
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(STEREO), "-af", "pan=stereo|c0=c0|c1=c0", str(dual)], check=True
    )
    assert not audio_io.has_separate_channels(audio_io.load(dual))
    assert diariser_kind(settings, audio_io.load(dual)) == "none"
    # a stereo pair of mics in one room: the same voices, 3 ms apart and quieter on one side
    x = stereo.channels[0]
    room = np.stack([x, 0.5 * np.concatenate([np.zeros(48, np.float32), x[:-48]])])
    assert not audio_io.has_separate_channels(audio_io.Audio(STEREO, room.mean(axis=0), room))
    # separate mics with crosstalk 25 dB down: still one person per channel
    bleed = np.stack([stereo.channels[0] + 0.056 * stereo.channels[1], stereo.channels[1] + 0.056 * stereo.channels[0]])
    assert audio_io.has_separate_channels(audio_io.Audio(STEREO, bleed.mean(axis=0), bleed))
    configured = Settings.load(None, **{"diarise.pipeline": str(tmp_path)})
    mono = audio_io.Audio(tmp_path / "m.wav", np.zeros(16000, np.float32), np.zeros((1, 16000), np.float32))
    assert diariser_kind(configured, mono) == "pyannote"
    assert diariser_kind(Settings.load(None, **{"diarise.backend": "none"}), stereo) == "none"


# ------------------------------------------------------------------------------------------
# bad recordings: a clear InputError naming the file, before any model runs


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def test_empty_file(tmp_path, settings):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as exc:
        SpeechPipeline(settings).transcribe(empty, INTERVIEW)
    assert exc.value.path == str(empty) and "empty" in exc.value.message


def test_not_audio(tmp_path):
    notes = tmp_path / "notes.m4a"
    notes.write_text("These are my notes, not a recording.\n" * 20)
    with pytest.raises(InputError) as exc:
        audio_io.load(notes)
    assert str(notes) in exc.value.message and "FFmpeg" in exc.value.message


def test_truncated_wav(tmp_path, speech):
    cut = tmp_path / "cut.wav"
    data = speech.read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # an interrupted copy
    with pytest.raises(InputError) as exc:
        audio_io.load(cut)
    assert "truncated" in exc.value.message and exc.value.path == str(cut)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:30])
    with pytest.raises(InputError):
        audio_io.load(header_only)


def test_video_without_audio_track(tmp_path):
    video = tmp_path / "screen.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-c:v", "libx264", "-an", str(video))
    with pytest.raises(InputError) as exc:
        audio_io.load(video)
    assert "no audio track" in exc.value.message and "video" in exc.value.message


def test_missing_file(tmp_path):
    with pytest.raises(NotFoundError):
        audio_io.load(tmp_path / "nope.wav")


def test_compressed_and_multichannel_recordings_decode(tmp_path, speech):
    m4a = tmp_path / "phone.m4a"
    _ffmpeg("-i", str(speech), "-c:a", "aac", str(m4a))
    audio = audio_io.load(m4a)
    assert audio.n_channels == 1 and audio.sample_rate == 16000
    assert audio.duration == pytest.approx(audio_io.load(speech).duration, abs=0.1)
    stereo = audio_io.load(STEREO)
    assert stereo.n_channels == 2 and stereo.channels.shape == (2, 80000)
    assert np.allclose(stereo.samples, stereo.channels.mean(axis=0))
