"""Word -> speaker assignment and turn-boundary smoothing on hand-made cases."""

from __future__ import annotations

from pipeline.backends.asr.base import AsrSegment, AsrWord
from pipeline.backends.diarise.base import Turn
from pipeline.stages.transcribe.assign import assign_speakers, speaker_at


def words(*spec: tuple[str, float, float]) -> list[AsrWord]:
    return [AsrWord(start, end, " " + text, 0.9) for text, start, end in spec]


def segment(ws: list[AsrWord]) -> AsrSegment:
    return AsrSegment(ws[0].start, ws[-1].end, "".join(w.text for w in ws).strip(), ws)


def spoken(result) -> list[tuple[str, str]]:
    return [(s.speaker, s.text) for s in result]


QUESTION = words(("So", 0.0, 0.2), ("what", 0.25, 0.5), ("does", 0.55, 0.8), ("that", 0.85, 1.1), ("mean?", 1.15, 1.6))
# the expert answers after a 0.5 s pause
ANSWER = words(("It", 2.1, 2.3), ("means", 2.35, 2.7), ("the", 2.75, 2.9), ("repo", 2.95, 3.2), ("server", 3.25, 3.7))


def test_each_word_goes_to_the_turn_it_overlaps_most_and_segments_split_at_changes():
    # Whisper put question and answer into one segment; diarisation knows better.
    turns = [Turn(0.0, 1.7, "SPEAKER_00"), Turn(2.0, 3.8, "SPEAKER_01")]
    result = assign_speakers([segment(QUESTION + ANSWER)], turns)
    assert spoken(result) == [("SPEAKER_00", "So what does that mean?"), ("SPEAKER_01", "It means the repo server")]
    assert (result[0].start, result[0].end) == (0.0, 1.6)
    assert (result[1].start, result[1].end) == (2.1, 3.7)
    assert all(lw.speaker == "SPEAKER_01" for lw in result[1].words)


def test_boundary_case_interviewers_last_words_are_not_given_to_the_expert():
    # The known failure: the expert's turn starts early, inside the interviewer's last word.
    turns = [Turn(0.0, 1.2, "SPEAKER_00"), Turn(1.2, 3.8, "SPEAKER_01")]
    segments = [segment(QUESTION), segment(ANSWER)]

    raw = assign_speakers(segments, turns, smoothing_s=0.0)
    assert spoken(raw)[:2] == [("SPEAKER_00", "So what does that"), ("SPEAKER_01", "mean?")]

    smoothed = assign_speakers(segments, turns, smoothing_s=0.5)
    assert spoken(smoothed) == [("SPEAKER_00", "So what does that mean?"), ("SPEAKER_01", "It means the repo server")]


def test_boundary_case_late_turn_gives_experts_first_words_back():
    # The other direction: the interviewer's turn ends late, over the expert's first words.
    turns = [Turn(0.0, 2.5, "SPEAKER_00"), Turn(2.5, 3.8, "SPEAKER_01")]
    segments = [segment(QUESTION + ANSWER)]
    assert spoken(assign_speakers(segments, turns, smoothing_s=0.0))[1] == ("SPEAKER_01", "means the repo server")
    assert spoken(assign_speakers(segments, turns, smoothing_s=0.6)) == [
        ("SPEAKER_00", "So what does that mean?"),
        ("SPEAKER_01", "It means the repo server"),
    ]


def test_smoothing_does_not_move_a_boundary_far_from_where_diarisation_put_it():
    # The pause is 0.75 s after the change point, outside a 0.5 s window: the boundary stays.
    turns = [Turn(0.0, 0.9, "SPEAKER_00"), Turn(0.9, 3.8, "SPEAKER_01")]
    result = assign_speakers([segment(QUESTION), segment(ANSWER)], turns, smoothing_s=0.5)
    assert spoken(result)[:2] == [("SPEAKER_00", "So what does"), ("SPEAKER_01", "that mean?")]


def test_a_short_flip_inside_continuous_speech_is_absorbed_but_a_real_short_reply_is_kept():
    run = words(("we", 0.0, 0.2), ("restart", 0.22, 0.6), ("the", 0.62, 0.7), ("pod", 0.72, 1.0), ("first", 1.02, 1.4))
    # diarisation flickers to the other speaker for one word in the middle of a sentence
    flicker = [Turn(0.0, 0.6, "A"), Turn(0.6, 0.71, "B"), Turn(0.71, 1.5, "A")]
    assert spoken(assign_speakers([segment(run)], flicker)) == [("A", "we restart the pod first")]

    reply = words(
        ("Did", 0.0, 0.2),
        ("it", 0.25, 0.4),
        ("work?", 0.45, 0.8),
        ("Yes.", 1.3, 1.6),
        ("Then", 2.2, 2.4),
        ("go", 2.45, 2.7),
    )
    turns = [Turn(0.0, 0.9, "A"), Turn(1.2, 1.7, "B"), Turn(2.1, 2.8, "A")]
    assert spoken(assign_speakers([segment(reply)], turns)) == [("A", "Did it work?"), ("B", "Yes."), ("A", "Then go")]


def test_words_in_a_gap_between_turns_go_to_the_nearest_turn():
    assert speaker_at(5.0, 5.2, [Turn(0.0, 4.0, "A"), Turn(5.5, 9.0, "B")]) == "B"
    assert speaker_at(4.1, 4.3, [Turn(0.0, 4.0, "A"), Turn(5.5, 9.0, "B")]) == "A"


def test_segments_without_word_timings_take_the_speaker_they_overlap_most():
    # whisperX without an alignment model: segment-level timings only
    segs = [AsrSegment(0.0, 1.6, "So what does that mean?"), AsrSegment(2.1, 3.7, "It means the repo server")]
    result = assign_speakers(segs, [Turn(0.0, 1.9, "A"), Turn(1.9, 4.0, "B")])
    assert spoken(result) == [("A", "So what does that mean?"), ("B", "It means the repo server")]
    assert result[0].words == []


def test_without_turns_everything_is_one_speaker():
    result = assign_speakers([segment(QUESTION), segment(ANSWER)], [])
    assert {s.speaker for s in result} == {"SPEAKER_00"}
    assert len(result) == 2
