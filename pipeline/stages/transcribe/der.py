"""RTTM files and the diarisation error rate (pyannote.metrics) of a hypothesis against a reference.

Scoring, not a plug-in: ``kb eval-diarisation`` and the diarisation tests use it over any
diariser's turns (or a transcript.json's segments).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from pipeline.backends.diarise.base import Turn
from pipeline.errors import InputError, MissingDependencyError, NotFoundError
from pipeline.transcripts import store as transcript_store


def write_rttm(turns: list[Turn], uri: str, path: Path) -> None:
    """RTTM (NIST) lines, for ``kb eval-diarisation`` and other tools."""
    from pipeline.workspace import atomic_write_text

    lines = [f"SPEAKER {uri} 1 {t.start:.3f} {t.duration:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n" for t in turns]
    atomic_write_text(path, "".join(lines))


def read_rttm(path: Path) -> dict[str, list[Turn]]:
    """Turns per recording (uri) of an RTTM file, read with pyannote.database."""
    try:
        from pyannote.database.util import load_rttm
    except ImportError:
        raise MissingDependencyError("pyannote.database", "diarise", "Reading RTTM files") from None
    if not path.is_file():
        raise NotFoundError(f"RTTM file not found: {path}", "Check the path.")
    try:
        annotations = load_rttm(str(path))
    except Exception as exc:  # pandas parser errors for malformed lines
        raise InputError(
            f"not a valid RTTM file ({type(exc).__name__}: {exc}).",
            "Each line: SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>.",
            path=path,
        ) from None
    if not annotations:
        raise InputError("the RTTM file holds no SPEAKER lines.", "Give a diarisation in RTTM format.", path=path)
    return {
        uri: sorted(
            (Turn(s.start, s.end, str(label)) for s, _, label in ann.itertracks(yield_label=True)),
            key=lambda t: t.start,
        )
        for uri, ann in annotations.items()
    }


@dataclass
class DerReport:
    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float  # seconds of reference speech
    mapping: dict[str, str]  # hypothesis label -> reference label (optimal)

    def __str__(self) -> str:
        return (
            f"DER {self.der:.2%} (missed {self.missed:.2f} s, false alarm {self.false_alarm:.2f} s, "
            f"confusion {self.confusion:.2f} s of {self.total:.2f} s reference speech)"
        )


def diarisation_error(
    reference: list[Turn], hypothesis: list[Turn], collar: float = 0.0, skip_overlap: bool = False
) -> DerReport:
    """Diarisation error rate (pyannote.metrics) with the optimal speaker mapping."""
    try:
        from pyannote.core import Annotation, Segment
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError:
        raise MissingDependencyError("pyannote.metrics", "diarise", "Scoring diarisation") from None

    def annotation(turns: list[Turn]) -> Annotation:
        ann = Annotation()
        for i, t in enumerate(turns):
            if t.end > t.start:
                ann[Segment(t.start, t.end), i] = t.speaker
        return ann

    ref, hyp = annotation(reference), annotation(hypothesis)
    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    with warnings.catch_warnings():  # "uem approximated by the extents": that is what we want
        warnings.simplefilter("ignore", UserWarning)
        details = metric(ref, hyp, detailed=True)
    mapping = {str(k): str(v) for k, v in metric.optimal_mapping(ref, hyp).items()}
    return DerReport(
        der=float(details["diarization error rate"]),
        missed=float(details["missed detection"]),
        false_alarm=float(details["false alarm"]),
        confusion=float(details["confusion"]),
        total=float(details["total"]),
        mapping=mapping,
    )


def transcript_turns(path: Path) -> list[Turn]:
    """A transcript.json's segments as turns (speaker = raw label, else name), to score against an RTTM."""
    if not path.is_file():
        raise NotFoundError(
            f"Neither an RTTM file nor an interview with a transcript: {path} does not exist.",
            "Give an RTTM file, or the id of an interview after 'kb transcribe ID'.",
        )
    transcript = transcript_store.read(path)
    names = {s.id: s.label or s.name for s in transcript.speakers}
    return [Turn(s.start, s.end, names.get(s.speaker, s.speaker)) for s in transcript.segments if s.end > s.start]
