"""One speaker per channel on faster-whisper's stereo_diarization.wav (a different speaker on each
channel, talking at the same time at first). The reference is an independent detector: Silero
VAD (shipped with faster-whisper) run on each channel alone."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.backends import audio as audio_io
from pipeline.backends.diarise.base import Turn
from pipeline.backends.diarise.channels import ChannelDiariser
from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.stages.transcribe.der import diarisation_error
from tests.conftest import DATA

STEREO = DATA / "asr" / "stereo_diarization.wav"


def silero_reference(audio: audio_io.Audio) -> list[Turn]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(speech_pad_ms=0, min_silence_duration_ms=300)
    turns = []
    for ch, label in enumerate(("left", "right")):
        for ts in get_speech_timestamps(audio.channels[ch], options):
            turns.append(Turn(ts["start"] / 16000, ts["end"] / 16000, label))
    return turns


def test_two_speakers_found_at_the_right_times():
    audio = audio_io.load(STEREO)
    turns = ChannelDiariser(Settings.load(None)).diarise(audio)
    assert {t.speaker for t in turns} == {"CH0", "CH1"}
    assert turns == sorted(turns, key=lambda t: (t.start, t.speaker))
    report = diarisation_error(silero_reference(audio), turns)
    assert report.mapping == {"CH0": "left", "CH1": "right"}
    assert report.confusion < 0.1  # a few frames at the edges of the overlap
    assert report.der < 0.25, report
    right = [t for t in turns if t.speaker == "CH1"]
    # the right channel speaks from ~0.4 s to ~2.6 s only
    assert right[0].start == pytest.approx(0.38, abs=0.1) and right[-1].end == pytest.approx(2.6, abs=0.15)


def test_crosstalk_is_not_a_second_speaker(tmp_path):
    """Channel 0 speaks; its voice leaks 30 dB down into channel 1's mic: only CH0 speaks."""
    audio = audio_io.load(STEREO)
    voice = audio.channels[1]  # the right-channel speaker, 0.4-2.6 s
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 10 ** (-60 / 20), voice.shape).astype(np.float32)
    channels = np.stack([voice + noise, voice * 10 ** (-30 / 20) + noise])
    mixed = audio_io.Audio(tmp_path / "x.wav", channels.mean(axis=0), channels)
    turns = ChannelDiariser(Settings.load(None)).diarise(mixed)
    assert {t.speaker for t in turns} == {"CH0"}
    assert turns[0].start == pytest.approx(0.38, abs=0.1)


def test_mono_recording_is_refused_with_the_fix():
    audio = audio_io.load(STEREO)
    mono = audio_io.Audio(audio.path, audio.samples, audio.samples[None, :])
    with pytest.raises(InputError) as exc:
        ChannelDiariser(Settings.load(None)).diarise(mono)
    assert "diarise.backend" in exc.value.hint
