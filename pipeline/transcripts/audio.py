"""Checks on a recording before any model sees it: empty, not audio, truncated, no audio track.

A speech model handed a broken file fails deep inside a decoder (or, worse, "transcribes" noise),
so the user gets a clear message here instead. ffprobe (FFmpeg) is used when installed, the
container's magic bytes otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pipeline.errors import InputError

_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"),  # wav, avi
    (0, b"fLaC"),
    (0, b"ID3"),  # mp3 with tags
    (0, b"OggS"),
    (0, b"\x1a\x45\xdf\xa3"),  # webm / mkv
    (4, b"ftyp"),  # mp4 / m4a / mov
    (0, b"#!AMR"),
    (0, b"\x30\x26\xb2\x75"),  # asf / wma
)


def _looks_like_media(head: bytes) -> bool:
    if any(head[off : off + len(sig)] == sig for off, sig in _MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG / AAC ADTS frame sync


def check(path: Path) -> None:
    path = Path(path)
    if not path.is_file():
        raise InputError("recording not found", "Register it again with 'kb add RECORDING'.", path=path)
    size = path.stat().st_size
    if size == 0:
        raise InputError("the recording is empty (0 bytes)", "Copy or export the recording again.", path=path)
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not _looks_like_media(head):
        raise InputError(
            "not an audio or video file (unknown content)",
            "Give kb the recording itself (wav, mp3, m4a, flac, ogg, webm, mp4, ...) or a transcript.",
            path=path,
        )
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > size:
            raise InputError(
                f"the WAV file is truncated ({size} of {declared} bytes)",
                "The copy or the recording was cut off; copy or export it again.",
                path=path,
            )
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return
    proc = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unreadable"])[-1]
        raise InputError(
            f"the recording cannot be decoded ({detail})",
            "The file is damaged or truncated; copy or export it again.",
            path=path,
        )
    if "audio" not in proc.stdout:
        raise InputError(
            "the file has no audio track",
            "Export the recording with its sound (or extract it: ffmpeg -i in.mp4 -vn out.m4a).",
            path=path,
        )
