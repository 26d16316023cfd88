"""The diarisation plug-in point: who spoke when, as a list of turns with raw speaker labels.

Labels stay raw (SPEAKER_00, CH0, ...): mapping them to the people of interview.yaml is the
transcripts layer's job (``map_speakers``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from pipeline.backends.audio import Audio


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


class Diariser(ABC):
    name: str = "diariser"

    @abstractmethod
    def diarise(
        self,
        audio: Audio,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[Turn]:
        """Turns sorted by start time; they may overlap."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Free the model."""


class SingleSpeaker(Diariser):
    """No diarisation: the whole recording is one speaker (``diarise.backend: none``)."""

    name = "none"

    def diarise(self, audio, num_speakers=None, min_speakers=None, max_speakers=None) -> list[Turn]:
        return [Turn(0.0, round(audio.duration, 3), "SPEAKER_00")] if audio.duration > 0 else []


def single_speaker(settings: Any = None) -> SingleSpeaker:
    """The registry's factory for ``diarise.backend: none``."""
    return SingleSpeaker()
