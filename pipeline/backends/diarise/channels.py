"""One speaker per channel, for recordings where each person has their own track
(phone-call recorders, Zoom/Riverside "separate audio", a two-mic field recorder).

Per 20 ms frame and channel: the channel speaks when its energy is well above its own noise
floor and not far below the loudest channel (quieter copies are crosstalk: the other person
leaking into this mic). Short gaps are bridged and blips dropped, like a VAD's hysteresis.
Two people talking at once on their own channels give overlapping turns, which is the truth.
"""

from __future__ import annotations

import numpy as np

from pipeline.backends.audio import Audio
from pipeline.backends.diarise.base import Diariser, Turn
from pipeline.config import Settings
from pipeline.errors import InputError

FRAME_S = 0.02
ABOVE_FLOOR_DB = 12.0  # speech is this far above the channel's noise floor
MIN_LEVEL_DB = -55.0  # never speech below this (dBFS)
MIN_GAP_S = 0.3  # bridge pauses shorter than this inside one person's speech
MIN_TURN_S = 0.2  # drop blips shorter than this (clicks, breaths)


class ChannelDiariser(Diariser):
    name = "channels"

    def __init__(self, settings: Settings):
        self.bleed_db = settings.diarise.channel_bleed_db

    def diarise(self, audio: Audio, num_speakers=None, min_speakers=None, max_speakers=None) -> list[Turn]:
        if audio.n_channels < 2:
            raise InputError(
                "the channels diariser needs a multi-channel recording (one person per channel); this one is mono.",
                "Set diarise.backend to 'auto' or 'pyannote' for mono recordings.",
                path=audio.path,
            )
        hop = int(FRAME_S * audio.sample_rate)
        n = audio.channels.shape[1] // hop
        if n == 0:
            return []
        frames = audio.channels[:, : n * hop].reshape(audio.n_channels, n, hop)
        db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=2) + 1e-12)
        floor = np.percentile(db, 10, axis=1, keepdims=True)
        loudest = db.max(axis=0, keepdims=True)
        active = (db > floor + ABOVE_FLOOR_DB) & (db > MIN_LEVEL_DB) & (db > loudest - self.bleed_db)
        turns: list[Turn] = []
        for ch in range(audio.n_channels):
            for start, end in _runs(_smooth(active[ch])):
                turns.append(Turn(round(start * FRAME_S, 3), round(end * FRAME_S, 3), f"CH{ch}"))
        return sorted(turns, key=lambda t: (t.start, t.speaker))


def _smooth(mask: np.ndarray) -> np.ndarray:
    """Bridge short gaps, then drop short blips (both in frames)."""
    mask = mask.copy()
    gap, blip = round(MIN_GAP_S / FRAME_S), round(MIN_TURN_S / FRAME_S)
    runs = _runs(~mask)
    for start, end in runs:
        if 0 < start and end < len(mask) and end - start < gap:
            mask[start:end] = True
    for start, end in _runs(mask):
        if end - start < blip:
            mask[start:end] = False
    return mask


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame ranges where ``mask`` is True."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
