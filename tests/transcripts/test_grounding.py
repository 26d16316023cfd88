"""Grounding is the guard rail of the whole product: test its verdicts and its reasons."""

from pipeline.models import Segment, Speaker, Transcript, TranscriptSource, Word
from pipeline.transcripts.grounding import normalise, verify_quote


def _transcript() -> Transcript:
    words = []
    t = 754.0
    for w in "when you see deadline exceeded it is almost always the repo server".split():
        words.append(Word(start=t, end=t + 0.4, text=" " + w))
        t += 0.5
    return Transcript(
        interview="2026-03-04-alice",
        source=TranscriptSource(kind="import", file="x.vtt"),
        speakers=[
            Speaker(id="S1", name="Alice Moreau", role="expert", label="SPEAKER_01"),
            Speaker(id="S2", name="Bob Chen", role="interviewer", label="SPEAKER_00"),
        ],
        segments=[
            Segment(
                id=0, start=740.0, end=745.0, speaker="S2", text="What does deadline exceeded usually mean for a sync?"
            ),
            Segment(
                id=1,
                start=754.0,
                end=760.0,
                speaker="S1",
                text="When you see deadline exceeded, it is almost always the repo server.",
                words=words,
            ),
            Segment(
                id=2,
                start=900.0,
                end=905.0,
                speaker="S1",
                text="Bump the reconciliation timeout only as a last resort.",
            ),
        ],
    )


def test_faithful_quote_verifies_and_refines_times_from_words():
    g = verify_quote(_transcript(), "Alice Moreau", 750, 781, "it is almost always the repo server")
    assert g.ok, g.reason
    assert g.segment_ids == [1]
    assert g.start == 756.5 and g.end == 759.9
    assert g.speaker_role == "expert"


def test_punctuation_and_case_do_not_matter():
    assert verify_quote(_transcript(), "alice moreau", 750, 781, "When you see DEADLINE exceeded -- it is").ok


def test_fabricated_quote_is_rejected_with_reason():
    g = verify_quote(_transcript(), "Alice Moreau", 750, 781, "restart the application controller every night")
    assert not g.ok
    assert "did not say this" in g.reason


def test_interviewer_quote_is_rejected():
    g = verify_quote(_transcript(), "Bob Chen", 740, 745, "what does deadline exceeded usually mean")
    assert not g.ok
    assert "interviewer" in g.reason


def test_expert_words_attributed_to_wrong_time_say_where_they_are():
    g = verify_quote(_transcript(), "Alice Moreau", 100, 110, "bump the reconciliation timeout only as a last resort")
    assert not g.ok
    assert "at 900.0 s, outside the cited" in g.reason


def test_interviewer_words_put_in_the_experts_mouth_are_named():
    g = verify_quote(_transcript(), "Alice Moreau", 740, 745, "what does deadline exceeded usually mean")
    assert not g.ok
    assert "said by Bob Chen (interviewer)" in g.reason


def test_unknown_speaker_and_short_quotes():
    assert "not a speaker" in verify_quote(_transcript(), "Carol", 0, 1000, "it is almost always").reason
    assert "fewer than" in verify_quote(_transcript(), "Alice Moreau", 750, 781, "repo server").reason


def test_normalise():
    assert normalise("It's  the REPO-server!") == "it s the repo server"
