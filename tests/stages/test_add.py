"""`kb add`: interview.yaml + registered source; bad files and ids refused before anything is written."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import pytest
import yaml

from pipeline.models import Interview
from pipeline.transcripts import interview as interview_file
from pipeline.workspace import sha256_file
from tests.paths import TESTS_DATA

DATA = TESTS_DATA / "transcripts"


def write_wav(path: Path, seconds: float = 0.5) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack("<h", 0) * int(16000 * seconds))
    return path


def test_add_transcript_creates_interview_yaml_and_copies_the_source(kb, workspace):
    src = DATA / "changelog/ship-it-21.md"
    r = kb(
        "-w",
        workspace,
        "add",
        src,
        "--title",
        "Learning from incidents",
        "--date",
        "2021-09-01",
        "--expert",
        "Chris Evans:co-founder, incident.io",
        "--expert",
        "Stephen Whitworth",
        "--interviewer",
        "Gerhard Lazu",
        "--topic",
        "incident response",
        "--vocab",
        "Monzo",
    )
    assert r.exit_code == 0, r.stderr
    folder = workspace / "interviews" / "2021-09-01-learning-from-incidents"
    iv = interview_file.load(folder / "interview.yaml")
    assert isinstance(iv, Interview) and iv.title == "Learning from incidents"
    assert [(p.name, p.role, p.title) for p in iv.people] == [
        ("Chris Evans", "expert", "co-founder, incident.io"),
        ("Stephen Whitworth", "expert", None),
        ("Gerhard Lazu", "interviewer", None),
    ]
    assert iv.topics == ["incident response"] and iv.vocabulary == ["Monzo"]
    (media,) = iv.media
    assert media.kind == "transcript" and media.copied and media.format == "markdown"
    assert (folder / media.file).read_bytes() == src.read_bytes()
    assert media.sha256 == sha256_file(src) and media.bytes == src.stat().st_size
    assert "speakers in the transcript: Gerhard Lazu, Stephen Whitworth, Chris Evans" in r.stderr
    # the file is plain YAML that validates against the model (editors use schemas/interview.json)
    assert yaml.safe_load((folder / "interview.yaml").read_text())["id"] == iv.id


def test_add_reference_keeps_the_file_in_place(kb, workspace, tmp_path):
    rec = write_wav(tmp_path / "Team Call.wav")
    r = kb("-w", workspace, "add", rec, "--reference", "--date", "2026-03-04")
    assert r.exit_code == 0, r.stderr
    folder = workspace / "interviews" / "team-call"
    (media,) = interview_file.load(folder / "interview.yaml").media
    assert media.kind == "recording" and not media.copied and media.file == str(rec.resolve())
    assert media.sha256 == sha256_file(rec)
    assert not (folder / rec.name).exists()
    assert "no people given" in r.stderr


@pytest.mark.parametrize("bad", ["../escape", "a/b", "Foo Bar", "..", "UPPER"])
def test_bad_ids_are_refused_with_the_fix(kb, workspace, bad):
    r = kb("-w", workspace, "add", DATA / "vtt/teams_timeframe.vtt", "--id", bad)
    assert r.exit_code == 1
    assert "is not a valid interview id" in r.stderr and "Hint: Use" in r.stderr
    assert not any((workspace / "interviews").glob("*/interview.yaml"))
    assert not (workspace / "escape").exists()


def test_existing_interview_is_not_overwritten(kb, workspace):
    assert kb("-w", workspace, "add", DATA / "vtt/teams_timeframe.vtt", "--id", "teams").exit_code == 0
    before = (workspace / "interviews/teams/interview.yaml").read_bytes()
    r = kb("-w", workspace, "add", DATA / "vtt/spec-example.vtt", "--id", "teams")
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert (workspace / "interviews/teams/interview.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.vtt", (DATA / "vtt/invalid_timeframe.vtt").read_bytes(), "broken.vtt:6: broken cue timing"),
        ("empty.wav", b"", "empty"),
        ("notaudio.wav", b"this is a text file, not audio\n" * 10, "not an audio or video file"),
        ("notes.docx", b"PK\x03\x04", "unknown file type"),
        ("empty.srt", b"", "empty"),
    ],
)
def test_bad_sources_are_refused_and_nothing_is_written(kb, workspace, tmp_path, name, content, message):
    src = tmp_path / name
    src.write_bytes(content)
    r = kb("-w", workspace, "add", src, "--id", "bad")
    assert r.exit_code == 1 and message in r.stderr and "Hint:" in r.stderr
    assert not (workspace / "interviews/bad").exists()


def test_truncated_wav_is_refused(kb, workspace, tmp_path):
    full = write_wav(tmp_path / "full.wav", 1.0).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[: len(full) // 2])
    r = kb("-w", workspace, "add", cut, "--id", "cut")
    assert r.exit_code == 1 and "truncated" in r.stderr


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (apt: ffmpeg) makes the video-only file")
def test_video_without_audio_track_is_refused(kb, workspace, tmp_path):
    video = tmp_path / "screen.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", "-an", str(video)],
        check=True,
    )
    r = kb("-w", workspace, "add", video, "--id", "screen")
    assert r.exit_code == 1 and "no audio track" in r.stderr
