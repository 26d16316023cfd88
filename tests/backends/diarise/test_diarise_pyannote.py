"""The real pyannote.audio 4 path, offline: a SpeakerDiarization pipeline built from local files
(tests/fakes/tiny_pyannote.py: whisperX's segmentation checkpoint + an untrained WeSpeaker
embedding), loaded by kb from ``diarise.pipeline`` and run through the Diariser interface. The
embedding is random, so speaker labels are meaningless; the code path is the real one."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytest.importorskip("pyannote.audio", reason="needs the diarise extra")
pytest.importorskip("whisperx", reason="the segmentation checkpoint ships in whisperx/assets")

from pipeline.backends import audio as audio_io  # noqa: E402
from pipeline.backends.diarise.pyannote import PyannoteDiariser  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.errors import MissingDependencyError, MissingModelError  # noqa: E402
from pipeline.models import Interview  # noqa: E402
from pipeline.stages.transcribe.speech import SpeechPipeline  # noqa: E402
from tests.fakes.tiny_pyannote import build_local_pipeline  # noqa: E402
from tests.fakes.tiny_whisper import TINY, build_tiny_whisper, espeak_wav  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("ffmpeg")), reason="needs espeak-ng and ffmpeg (apt)"
)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    return build_local_pipeline(tmp_path_factory.mktemp("pyannote") / "pipeline")


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory):
    """Two espeak voices taking turns: a question, a pause, an answer (about 6 s)."""
    folder = tmp_path_factory.mktemp("dialogue")
    q = espeak_wav(folder / "q.wav", "What does deadline exceeded mean?", voice="en+m3")
    a = espeak_wav(folder / "a.wav", "It is almost always the repo server.", voice="en+f3")
    out = folder / "dialogue.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(q),
            "-i",
            str(a),
            "-filter_complex",
            "[0]apad=pad_dur=0.7[q];[q][1]concat=n=2:v=0:a=1",
            "-ar",
            "16000",
            "-ac",
            "1",
            str(out),
        ],
        check=True,
    )
    return out


def test_local_pipeline_produces_turns(pipeline_dir, dialogue):
    diariser = PyannoteDiariser(Settings.load(None, **{"diarise.pipeline": str(pipeline_dir)}))
    audio = audio_io.load(dialogue)
    turns = diariser.diarise(audio, num_speakers=2)
    assert turns, "segmentation finds speech"
    assert all(t.speaker.startswith("SPEAKER_") for t in turns)
    assert all(0 <= t.start < t.end <= audio.duration + 0.1 for t in turns)
    assert turns == sorted(turns, key=lambda t: (t.start, t.speaker))
    # exclusive diarisation: one speaker at a time, made for aligning words
    assert all(a.end <= b.start + 1e-6 for a, b in zip(turns, turns[1:], strict=False))
    speech = sum(t.duration for t in turns)
    assert speech > 0.5 * audio.duration


def test_speech_pipeline_uses_the_configured_pipeline(pipeline_dir, dialogue, tmp_path):
    model = build_tiny_whisper(tmp_path / "tiny")
    settings = Settings.load(
        None,
        **{
            "asr.model": str(model),
            **TINY,
            "diarise.pipeline": str(pipeline_dir / "config.yaml"),
        },
    )
    interview = Interview(id="dlg", title="Dialogue", date="2026-01-01", num_speakers=2)
    with SpeechPipeline(settings) as speech:
        transcript = speech.transcribe(dialogue, interview)
        assert "pyannote" in speech._diarisers
    assert transcript.speakers and all(s.label.startswith("SPEAKER_") for s in transcript.speakers)
    assert all(s.role == "unknown" for s in transcript.speakers)


def test_no_pipeline_and_no_token_names_the_config_key(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(MissingModelError) as exc:
        PyannoteDiariser(Settings.load(None, **{"diarise.backend": "pyannote"}))
    assert "diarise.pipeline" in exc.value.hint and "HF_TOKEN" in exc.value.hint


def test_pipeline_path_without_config(tmp_path):
    with pytest.raises(MissingModelError) as exc:
        PyannoteDiariser(Settings.load(None, **{"diarise.pipeline": str(tmp_path)}))
    assert "config.yaml" in exc.value.message and "diarise.pipeline" in exc.value.hint


def test_missing_extra_names_the_diarise_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyannote.audio", None)  # as if pyannote.audio were not installed
    with pytest.raises(MissingDependencyError) as exc:
        PyannoteDiariser(Settings.load(None, **{"diarise.pipeline": "x"}))
    assert exc.value.extra == "diarise" and "kb[diarise]" in exc.value.hint


def test_local_config_naming_a_hub_model_is_refused_before_any_download(pipeline_dir, tmp_path):
    import yaml

    config = yaml.safe_load((pipeline_dir / "config.yaml").read_text())
    config["pipeline"]["params"]["embedding"] = "pyannote/wespeaker-voxceleb-resnet34-LM"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(MissingModelError) as exc:
        PyannoteDiariser(Settings.load(None, **{"diarise.pipeline": str(tmp_path)}))
    assert "pipeline.params.embedding" in exc.value.message and "never downloads" in exc.value.message
