"""Load and check recordings once, for both ASR and diarisation.

Decoding uses PyAV (FFmpeg's libraries), which ships with faster-whisper, so any container a phone
or a meeting tool writes (m4a, mp3, wav, flac, webm, mp4 ...) works. Bad input is an InputError
naming the file: empty, not audio, a video without an audio track, or truncated (the header
promises more audio than the file holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import InputError, MissingDependencyError, NotFoundError

SAMPLE_RATE = 16_000
# Decoded audio shorter than this share of the duration the container declares means truncation.
TRUNCATION_RATIO = 0.9


@dataclass
class Audio:
    """A recording decoded to 16 kHz float32: ``samples`` is the mono mix, ``channels`` each channel."""

    path: Path
    samples: np.ndarray
    channels: np.ndarray = field(repr=False)  # shape (n_channels, n_samples)
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def n_channels(self) -> int:
        return int(self.channels.shape[0])


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - av comes with faster-whisper
        raise MissingDependencyError("av", "asr", "Decoding recordings") from None
    return av


def load(path: Path | str, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Decode ``path`` to float32 at ``sample_rate``, keeping every channel; InputError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"Recording not found: {path}", "Check the path in interview.yaml (media).")
    if path.stat().st_size == 0:
        raise InputError("the recording is empty (0 bytes).", "Copy the recording again.", path=path)
    av = _av()
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"not a recording FFmpeg can read ({_reason(exc)}).",
            "Give an audio or video file (wav, mp3, m4a, flac, ogg, webm, mp4 ...).",
            path=path,
        ) from None
    with container:
        if not container.streams.audio:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise InputError(
                f"the file has no audio track (it holds {kinds}).",
                "Export the recording with its sound, e.g. ffmpeg -i in.mp4 -vn out.m4a.",
                path=path,
            )
        stream = container.streams.audio[0]
        n_channels = max(1, stream.codec_context.channels or 1)
        declared = _declared_duration(container, stream)
        layout = "mono" if n_channels == 1 else stream.codec_context.layout.name
        # s16 like faster_whisper.decode_audio: kb's ASR input is bit-identical to faster-whisper's own.
        resampler = av.AudioResampler(format="s16p", layout=layout, rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except (av.error.FFmpegError, ValueError) as exc:
            if not chunks:
                raise InputError(
                    f"the audio cannot be decoded ({_reason(exc)}).",
                    "The file is damaged or truncated; copy or export it again.",
                    path=path,
                ) from None
            # A damaged tail: keep what decoded, the duration check below decides.
    if not chunks or sum(c.shape[-1] for c in chunks) == 0:
        raise InputError(
            "the audio track holds no samples (truncated or empty recording).",
            "Copy or export the recording again.",
            path=path,
        )
    channels = np.concatenate(chunks, axis=-1).astype(np.float32) / 32768.0
    if channels.ndim == 1:
        channels = channels[None, :]
    decoded = channels.shape[1] / sample_rate
    if declared and declared > 1.0 and decoded < TRUNCATION_RATIO * declared:
        raise InputError(
            f"the recording is truncated: its header declares {declared:.1f} s but only "
            f"{decoded:.1f} s of audio could be decoded.",
            "Copy the file again (an interrupted download or copy leaves a short file).",
            path=path,
        )
    samples = channels.mean(axis=0) if channels.shape[0] > 1 else channels[0]
    return Audio(path=path, samples=np.ascontiguousarray(samples), channels=channels, sample_rate=sample_rate)


def _declared_duration(container, stream) -> float | None:
    """What the header promises. FFmpeg estimates a WAV's duration from the file size, so a WAV's
    own header (stdlib ``wave``) is asked first: that is what a truncated copy contradicts."""
    if container.format.name == "wav":
        import wave

        try:
            with wave.open(container.name, "rb") as wav:
                return wav.getnframes() / wav.getframerate()
        except (wave.Error, EOFError, OSError):
            pass  # e.g. float or extensible WAVs that stdlib wave does not read
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    # FFmpeg messages carry "[Errno 1094995529] Invalid data found when processing input: 'path'"
    if "]" in text:
        text = text.split("]", 1)[1].strip()
    return text.split(":", 1)[0].strip() or type(exc).__name__


def has_separate_channels(audio: Audio, max_correlation: float = 0.8) -> bool:
    """True when the channels carry different people (one mic each), False for one signal on
    every channel (a phone's "stereo" copy) or a stereo pair of mics in one room.

    Compares the channels' loudness over time (50 ms frames): a room pair or a copy rises and
    falls together (correlation near 1, whatever the delay between the mics); separate mics take
    turns, with at most some crosstalk (correlation near 0)."""
    if audio.n_channels < 2:
        return False
    hop = int(0.05 * audio.sample_rate)
    n = audio.channels.shape[1] // hop
    if n < 2:
        return False
    power = np.mean(audio.channels[:, : n * hop].reshape(audio.n_channels, n, hop).astype(np.float64) ** 2, axis=2)
    if np.any(power.std(axis=1) == 0):  # a silent channel: nothing to compare, each channel its own
        return True
    corr = np.corrcoef(power)
    return bool(np.all(corr[np.triu_indices(audio.n_channels, k=1)] < max_correlation))
