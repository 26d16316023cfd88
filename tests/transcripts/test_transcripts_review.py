"""transcript.md rendering and reading back, reviewer corrections, and speaker mapping."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.errors import InputError
from pipeline.models import Interview, Person, TranscriptCorrection, Word
from pipeline.transcripts import corrections, importers, markdown, speakers
from tests.paths import TESTS_DATA

DATA = TESTS_DATA / "transcripts"


def _interview(**kw) -> Interview:
    base = dict(id="t", title="T", date=dt.date(2021, 9, 1))
    base.update(kw)
    return Interview(**base)


SHIPIT_PEOPLE = [
    Person(name="Gerhard Lazu", role="interviewer"),
    Person(name="Chris Evans", role="expert", aliases=["Chris"]),
    Person(name="Stephen Whitworth", role="expert"),
]


def _mapped(rel: str, **kw):
    t = importers.import_file(DATA / rel, "t").transcript
    return speakers.map_speakers(t, _interview(people=kw.pop("people", SHIPIT_PEOPLE), **kw))


def test_render_parse_round_trip_on_a_real_transcript(tmp_path):
    t, _ = _mapped("changelog/ship-it-21.md")
    md = markdown.render(t, "Learning from incidents")
    assert md.splitlines()[0] == "# Transcript: Learning from incidents"
    assert "**[00:04:01] Chris Evans (expert):** So what we're building" in md
    turns = markdown.parse(md, tmp_path / "transcript.md")
    assert len(turns) == len(t.segments)
    for turn, seg in zip(turns, t.segments, strict=True):
        assert turn.stamp == markdown.stamp(seg.start)
        assert turn.name == t.speaker(seg.speaker).name
        assert turn.text == markdown.normalise(seg.text)
    found, warnings = corrections.find(md, tmp_path / "transcript.md", t)
    assert found == [] and warnings == []


def test_markdown_of_kb_itself_imports_back(tmp_path):
    """A transcript.md from another kb is itself an importable speaker-labelled file."""
    t, _ = _mapped("vtt/spec-example.vtt", people=[])
    path = tmp_path / "other.md"
    path.write_text(markdown.render(t), encoding="utf-8")
    back = importers.import_file(path, "t").transcript
    assert [b.text for b in back.segments] == [s.text for s in t.segments]
    assert [back.speaker(b.speaker).name for b in back.segments] == [t.speaker(s.speaker).name for s in t.segments]
    assert [b.start for b in back.segments] == [float(int(s.start)) for s in t.segments]


def test_kb_transcript_json_imports_back_with_speaker_names(tmp_path):
    t, _ = _mapped("vtt/teams_timeframe.vtt", people=[])
    path = tmp_path / "from-other-kb.json"
    path.write_text(t.model_dump_json(), encoding="utf-8")
    back = importers.import_file(path, "t").transcript
    assert [(back.speaker(s.speaker).name, s.start, s.text) for s in back.segments] == [
        (t.speaker(s.speaker).name, s.start, s.text) for s in t.segments
    ]
    assert [w.text for s in back.segments for w in s.words] == [w.text for s in t.segments for w in s.words]


def test_text_correction_keeps_segment_times_and_unchanged_word_timings(tmp_path):
    t, _ = _mapped(
        "vtt/spec-example.vtt",
        people=[Person(name="Neil deGrasse Tyson", role="expert"), Person(name="Roger Bingham", role="interviewer")],
    )
    md = markdown.render(t)
    old_seg = t.segments[0]
    edited = md.replace("We're actually at the Lucern Hotel", "We're actually at the Lucerne Hotel")
    found, _ = corrections.find(edited, tmp_path / "transcript.md", t)
    assert [(f.correction.segment, f.correction.field) for f in found] == [(0, "text")]
    new, applied, skipped = corrections.apply(t, [f.correction for f in found], _interview())
    seg = new.segments[0]
    assert (seg.start, seg.end) == (old_seg.start, old_seg.end)
    assert "Lucerne Hotel" in seg.text and not skipped and len(applied) == 1
    old_words = {(w.text, w.start, w.end) for w in old_seg.words}
    kept = [w for w in seg.words if (w.text, w.start, w.end) in old_words]
    assert len(kept) == len(seg.words) - 1  # only the corrected word changed
    lucerne = next(w for w in seg.words if w.text == "Lucerne")
    lucern = next(w for w in old_seg.words if w.text == "Lucern")
    assert (lucerne.start, lucerne.end) == (lucern.start, lucern.end)


def test_speaker_correction_reassigns_the_segment(tmp_path):
    t, _ = _mapped("changelog/ship-it-21.md")
    md = markdown.render(t)
    line = "**[00:03:34] Chris Evans (expert):** Hey. Good to be here."
    assert line in md
    edited = md.replace(line, "**[00:03:34] Stephen Whitworth (expert):** Hey. Good to be here.")
    found, _ = corrections.find(edited, tmp_path / "transcript.md", t)
    assert [(f.correction.field, f.correction.before, f.correction.after) for f in found] == [
        ("speaker", "Chris Evans", "Stephen Whitworth")
    ]
    new, applied, _ = corrections.apply(t, [f.correction for f in found], _interview(people=SHIPIT_PEOPLE))
    seg = new.segments[found[0].correction.segment]
    assert new.speaker(seg.speaker).name == "Stephen Whitworth" and new.speaker(seg.speaker).role == "expert"


def test_unknown_speaker_name_in_transcript_md_is_an_error_with_line(tmp_path):
    t, _ = _mapped("changelog/ship-it-21.md")
    md = markdown.render(t).replace("**[00:03:34] Chris Evans (expert):**", "**[00:03:34] Kris Evens (expert):**")
    found, _ = corrections.find(md, tmp_path / "transcript.md", t)
    with pytest.raises(InputError, match="'Kris Evens' is nobody in interview.yaml") as exc:
        corrections.apply(
            t,
            [f.correction for f in found],
            _interview(people=SHIPIT_PEOPLE),
            md_path=tmp_path / "transcript.md",
            lines=[f.line for f in found],
        )
    assert exc.value.line == md.splitlines().index("**[00:03:34] Kris Evens (expert):** Hey. Good to be here.") + 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda md: md.replace("**[00:03:34] Chris Evans (expert):** Hey. Good to be here.\n\n", ""), "does not match"),
        (lambda md: md.replace("**[00:03:34] Chris", "**[00:03:35] Chris"), "does not match"),
        (lambda md: md + "\n**[01:00:00] Chris Evans (expert):** one more\n", "more than the transcript"),
        (
            lambda md: md.replace("**[00:03:34] Chris Evans (expert):**", "**[00:03:34 Chris Evans (expert):**"),
            "not understood",
        ),
        (lambda md: md.replace("Hey. Good to be here.", ""), "no text left"),
    ],
)
def test_structural_edits_are_refused_with_a_line(tmp_path, edit, message):
    t, _ = _mapped("changelog/ship-it-21.md")
    with pytest.raises(InputError, match=message) as exc:
        corrections.find(edit(markdown.render(t)), tmp_path / "transcript.md", t)
    assert exc.value.line and exc.value.hint


def test_stored_corrections_reapply_or_are_kept_unapplied():
    t, _ = _mapped("changelog/ship-it-21.md")
    seg = t.segments[2]
    good = TranscriptCorrection(
        segment=2, start=seg.start, field="text", before=seg.text, after="Hey. Great to be here."
    )
    stale = TranscriptCorrection(segment=3, start=seg.start, field="text", before="x", after="y")
    new, applied, skipped = corrections.apply(t, [good, stale], _interview(people=SHIPIT_PEOPLE))
    assert new.segments[2].text == "Hey. Great to be here."
    assert [c.applied for c in applied] == [True] and [c.applied for c in skipped] == [False]
    again, applied2, _ = corrections.apply(new, [good], _interview(people=SHIPIT_PEOPLE))
    assert again.segments[2].text == "Hey. Great to be here." and len(applied2) == 1  # idempotent


def test_retime_replace_insert_delete():
    words = [Word(start=float(i), end=float(i) + 1, text=w) for i, w in enumerate("the repo server ran out".split())]
    out = corrections.retime(words, "the argo repo-server ran completely out")
    assert [w.text for w in out] == ["the", "argo", "repo-server", "ran", "completely", "out"]
    assert (out[0].start, out[-1].end) == (0.0, 5.0)
    assert out[1].start == 1.0 and out[2].end == 3.0  # 'argo repo-server' share 'repo server''s span
    assert out[4].start == out[4].end == 4.0  # inserted word: zero length at its place
    assert corrections.retime([], "anything") == []


# --------------------------------------------------------------------------------------------
# speakers


def test_map_speakers_by_name_alias_fuzzy_and_map():
    t = importers.import_file(DATA / "vtt/teams_timeframe.vtt", "t").transcript
    iv = _interview(
        people=[Person(name="Yuri Bakulin", role="expert"), Person(name="Adrian Petrescu", role="interviewer")]
    )
    mapped, report = speakers.map_speakers(t, iv)
    assert [(sp.name, sp.role) for sp in mapped.speakers] == [
        ("Yuri Bakulin", "expert"),
        ("Adrian Petrescu", "interviewer"),
    ]
    assert report.unmapped == [] and report.warnings == []

    fuzzy = _interview(
        people=[Person(name="Yuri Bakulin-Smith", role="expert"), Person(name="A. Petrescu", role="interviewer")]
    )
    mapped, report = speakers.map_speakers(t, fuzzy)
    assert report.how == {"Yuri Bakulin": "fuzzy", "Adrian Petrescu": "fuzzy"}
    alias = _interview(
        people=[Person(name="Y. B.", role="expert", aliases=["Yuri Bakulin"])], speaker_map={"Adrian Petrescu": "Y. B."}
    )
    mapped, report = speakers.map_speakers(t, alias)
    assert report.how == {"Yuri Bakulin": "alias", "Adrian Petrescu": "speaker_map"}
    assert len(mapped.speakers) == 1 and {s.speaker for s in mapped.segments} == {mapped.speakers[0].id}


def test_unmapped_and_ambiguous_speakers_are_reported_with_role_unknown():
    t = importers.import_file(DATA / "changelog/ship-it-21.md", "t").transcript
    iv = _interview(
        people=[
            Person(name="Gerhard Lazu", role="interviewer"),
            Person(name="Chris Evans", role="expert"),
            Person(name="Chris Whitworth", role="expert"),
        ]
    )
    mapped, report = speakers.map_speakers(t, iv)
    assert "Stephen Whitworth" in report.unmapped
    sp = next(s for s in mapped.speakers if s.name == "Stephen Whitworth")
    assert sp.role == "unknown"
    assert any("Stephen Whitworth" in w and "distillation ignores" in w for w in report.warnings)
    assert any("Chris Whitworth" in w and "says nothing" in w for w in report.warnings)
    # every segment has a speaker with a role
    roles = {s.id: s.role for s in mapped.speakers}
    assert all(seg.speaker in roles for seg in mapped.segments)


def test_ambiguous_first_name_is_not_guessed():
    t = importers.import_file(DATA / "vtt/voice-with-annotation.vtt", "t").transcript  # speaker 'Mary'
    iv = _interview(people=[Person(name="Mary Major", role="expert"), Person(name="Mary Minor", role="interviewer")])
    _, report = speakers.map_speakers(t, iv)
    assert report.unmapped == ["Mary"] and report.ambiguous["Mary"] == ["Mary Major", "Mary Minor"]


def test_speaker_map_to_unknown_person_is_an_error():
    t = importers.import_file(DATA / "vtt/teams_timeframe.vtt", "t").transcript
    iv = _interview(people=[Person(name="Yuri Bakulin", role="expert")], speaker_map={"Adrian Petrescu": "Adrian P"})
    with pytest.raises(InputError, match="'Adrian Petrescu' to 'Adrian P', who is not in people"):
        speakers.map_speakers(t, iv)
