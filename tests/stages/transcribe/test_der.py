"""DER with pyannote.metrics: the library function and `kb eval-diarisation`."""

from __future__ import annotations

import pytest

from pipeline.backends.diarise.base import Turn
from pipeline.errors import InputError
from pipeline.models import Segment, Speaker, Transcript, TranscriptSource
from pipeline.stages.transcribe.der import diarisation_error, read_rttm, write_rttm
from tests.conftest import DATA

REF = DATA / "asr" / "sample.rttm"  # pyannote's tutorial sample: speaker90 / speaker91, with overlap
TOTAL = 24.35  # seconds of reference speech (sum of the RTTM durations)


def hypothesis_without_last_turn() -> list[Turn]:
    """The reference relabelled A/B, minus speaker90's last turn (27.85 s + 2.15 s)."""
    names = {"speaker90": "A", "speaker91": "B"}
    return [Turn(t.start, t.end, names[t.speaker]) for t in read_rttm(REF)["sample"] if t.start != 27.85]


def test_der_matches_a_hand_computed_value():
    ref = read_rttm(REF)["sample"]
    assert len(ref) == 10 and sum(t.duration for t in ref) == pytest.approx(TOTAL)
    assert diarisation_error(ref, ref).der == 0.0
    report = diarisation_error(ref, hypothesis_without_last_turn())
    assert report.mapping == {"A": "speaker90", "B": "speaker91"}
    assert report.missed == pytest.approx(2.15) and report.false_alarm == 0 and report.confusion == 0
    assert report.der == pytest.approx(2.15 / TOTAL)
    swapped = [Turn(t.start, t.end, "B" if t.speaker == "A" else "A") for t in hypothesis_without_last_turn()]
    assert diarisation_error(ref, swapped).der == pytest.approx(2.15 / TOTAL)  # labels are arbitrary


def test_cli_rttm_against_rttm(tmp_path, kb):
    hyp = tmp_path / "hyp.rttm"
    write_rttm(hypothesis_without_last_turn(), "sample", hyp)
    result = kb("eval-diarisation", hyp, REF)
    assert result.exit_code == 0, result.stderr
    assert "sample: DER 8.83% (missed 2.15 s, false alarm 0.00 s, confusion 0.00 s of 24.35 s" in result.stdout
    assert "A = speaker90, B = speaker91" in result.stdout


def test_cli_interview_transcript_against_rttm(workspace, kb):
    segments = [
        Segment(id=i, start=t.start, end=t.end, speaker="S1" if t.speaker == "A" else "S2", text="...")
        for i, t in enumerate(hypothesis_without_last_turn())
    ]
    transcript = Transcript(
        interview="sample",
        source=TranscriptSource(kind="asr", file="sample.wav"),
        speakers=[Speaker(id="S1", name="Ann", label="SPEAKER_00"), Speaker(id="S2", name="Bo", label="SPEAKER_01")],
        segments=segments,
    )
    folder = workspace / "interviews" / "sample"
    folder.mkdir(parents=True)
    (folder / "transcript.json").write_text(transcript.model_dump_json())
    result = kb("-w", workspace, "eval-diarisation", "sample", REF)
    assert result.exit_code == 0, result.stderr
    assert "DER 8.83%" in result.stdout and "SPEAKER_00 = speaker90" in result.stdout


def test_bad_rttm_and_unknown_hypothesis_are_clear_errors(tmp_path, kb):
    bad = tmp_path / "bad.rttm"
    bad.write_text("SPEAKER sample 1 abc\n")
    with pytest.raises(InputError):
        read_rttm(bad)
    result = kb("eval-diarisation", bad, REF)
    assert result.exit_code == 1 and "Error:" in result.stderr and "bad.rttm" in result.stderr
    result = kb("-w", tmp_path, "eval-diarisation", "no-such-interview", REF)
    assert result.exit_code == 1 and "Neither an RTTM file nor an interview" in result.stderr
