"""Importers against real files: WebVTT, SRT, whisper JSON and Changelog speaker-labelled Markdown.

Every file that imports has a golden transcript.json (tests/data/transcripts/golden/); rewrite
them with KB_UPDATE_GOLDEN=1 after an intended change and review the diff.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from pipeline.errors import InputError
from pipeline.transcripts import importers, text, vtt
from pipeline.transcripts.timing import Anchor, Clock
from tests.paths import TESTS_DATA

DATA = TESTS_DATA / "transcripts"
GOLDEN = DATA / "golden"

GOOD_FILES = [
    "vtt/spec-example.vtt",
    "vtt/voice-with-annotation.vtt",
    "vtt/voice-with-closing-span.vtt",
    "vtt/captions_with_bom.vtt",
    "vtt/comments.vtt",
    "vtt/cue_tags.vtt",
    "vtt/metadata_headers.vtt",
    "vtt/sample.vtt",
    "vtt/styles.vtt",
    "vtt/teams_timeframe.vtt",
    "vtt/using_identifiers.vtt",
    "vtt/youtube_dl.vtt",
    "srt/sample.srt",
    "srt/capability_tester.srt",
    "json/apollo11.large.words.json",
    "changelog/ship-it-21.md",
    "changelog/go-time-255.md",
]


def _import(rel: str):
    return importers.import_file(DATA / rel, "test", sha256="0" * 64)


@pytest.mark.parametrize("rel", GOOD_FILES)
def test_golden_transcript(rel):
    got = _import(rel).transcript.model_dump(mode="json", exclude_none=True)
    golden = GOLDEN / (rel.replace("/", "__") + ".json")
    if os.environ.get("KB_UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if os.environ.get("KB_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {golden.name} was missing and has been written; review and commit it")
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_vtt_spec_example_matches_vttjs_expected_cues():
    """Cue times, voices and texts equal vtt.js's own expected parse of the W3C spec example."""
    expected = json.loads((DATA / "vtt/spec-example.expected.json").read_text(encoding="utf-8"))["cues"]
    cues = vtt.read_cues(DATA / "vtt/spec-example.vtt")
    assert len(cues) == len(expected) == 13
    for cue, exp in zip(cues, expected, strict=True):
        voice = re.match(r"<v ([^>]+)>", exp["text"])
        assert cue.start == exp["startTime"] and cue.end == exp["endTime"]
        assert cue.label == (voice.group(1) if voice else None)
        assert cue.text == re.sub(r"<[^>]*>", "", exp["text"]).strip()


def test_vtt_overlapping_cues_stay_separate_turns_in_time_order():
    t = _import("vtt/spec-example.vtt").transcript
    names = [t.speaker(s.speaker).name for s in t.segments]
    assert names == ["Roger Bingham", "Neil deGrasse Tyson", "Roger Bingham", "Neil deGrasse Tyson", "Roger Bingham"]
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)
    assert t.segments[0].end > t.segments[1].start  # overlap kept, not clipped
    # the eight first Roger cues are one turn whose words keep each cue's timing
    first = t.segments[0]
    assert first.start == 11.0 and first.text.startswith("We are in New York City We're actually")
    york = next(w for w in first.words if w.text == "City")
    assert 11.0 <= york.start < york.end <= 13.0
    assert next(w for w in first.words if w.text == "actually").start >= 13.0


def test_vtt_teams_short_timestamps_and_voices():
    t = _import("vtt/teams_timeframe.vtt").transcript
    assert [(s.start, s.end, t.speaker(s.speaker).name, s.text) for s in t.segments] == [
        (0.0, 0.57, "Yuri Bakulin", "There you go."),
        (0.21, 1.13, "Adrian Petrescu", "Why hello there, Yuri."),
    ]


def test_vtt_bom_notes_styles_identifiers_and_settings():
    assert [c.text for c in vtt.read_cues(DATA / "vtt/captions_with_bom.vtt")][0] == "Caption text #1"
    comments = vtt.read_cues(DATA / "vtt/comments.vtt")
    assert len(comments) == 3 and not any("NOTE" in c.text for c in comments)
    assert [c.text for c in vtt.read_cues(DATA / "vtt/styles.vtt")] == ["- Hello world."]
    ids = vtt.read_cues(DATA / "vtt/using_identifiers.vtt")
    assert [c.text for c in ids] == [f"Caption text #{i}" for i in range(1, 7)]
    tags = vtt.read_cues(DATA / "vtt/cue_tags.vtt")
    assert [c.text for c in tags] == ["When the moon hits your eye", "Like a big-a pizza pie", "That's amore"]


def test_vtt_youtube_rolling_lines_are_not_duplicated_and_word_tags_give_timings():
    t = _import("vtt/youtube_dl.vtt").transcript
    words = [w.text for s in t.segments for w in s.words]
    assert words == ["yeah", "what", "this", "will", "happen", "is", "I'm", "telling"]
    happen = next(w for s in t.segments for w in s.words if w.text == "happen")
    assert (happen.start, happen.end) == (304.379, 304.62)  # from <00:05:04.379> .. <00:05:04.620>


@pytest.mark.parametrize(
    ("rel", "line", "what"),
    [
        ("vtt/invalid_timeframe.vtt", 6, "broken cue timing '00:00:07.000 --> 00:00:1d.890'"),
        ("vtt/missing_timeframe.vtt", 6, "cue text without a timing line"),
    ],
)
def test_vtt_broken_timings_are_refused_with_line(rel, line, what):
    with pytest.raises(InputError) as exc:
        _import(rel)
    assert exc.value.line == line and exc.value.path.endswith(rel.split("/")[1])
    assert what in exc.value.message and exc.value.hint


def test_vtt_without_header_and_voice_only_cue(tmp_path):
    bad = tmp_path / "no-header.vtt"
    bad.write_text("00:00:01.000 --> 00:00:02.000\nhello\n", encoding="utf-8")
    with pytest.raises(InputError, match="first line must be 'WEBVTT'"):
        importers.import_file(bad, "x")
    with pytest.raises(InputError, match="holds no text"):
        _import("vtt/voice-no-end-gt.vtt")  # '<v It's a blue apple tree!' is an unclosed tag: no text


def test_vtt_zoom_style_name_prefixes_become_speakers(tmp_path):
    src = tmp_path / "zoom.vtt"
    src.write_text(
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:03.000\nAlice Moreau: The repo server ran out of memory.\n\n"
        "2\n00:00:03.500 --> 00:00:05.000\nBob Chen: What did you change?\n\n"
        "3\n00:00:05.200 --> 00:00:08.000\nAlice Moreau: We raised the limit to 2Gi.\n",
        encoding="utf-8",
    )
    t = importers.import_file(src, "x").transcript
    assert [(t.speaker(s.speaker).name, s.text) for s in t.segments] == [
        ("Alice Moreau", "The repo server ran out of memory."),
        ("Bob Chen", "What did you change?"),
        ("Alice Moreau", "We raised the limit to 2Gi."),
    ]


def test_srt_tags_stripped_and_zero_length_cues_kept():
    t = _import("srt/capability_tester.srt").transcript
    all_text = " ".join(s.text for s in t.segments)
    assert "<font" not in all_text and "<b>" not in all_text and "{\\an8}" not in all_text
    assert "This text should be blue" in all_text and "日本語" in all_text
    assert "2<3,5>1,4<6" in all_text  # not a tag: kept


def test_srt_broken_timing_and_missing_timing(tmp_path):
    good = (DATA / "srt/sample.srt").read_text(encoding="utf-8")
    broken = tmp_path / "broken.srt"
    broken.write_text(good.replace("00:00:11,890", "00:00:1x,890", 1), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        importers.import_file(broken, "x")
    assert exc.value.line == 6 and "broken timing" in exc.value.message
    missing = tmp_path / "missing.srt"
    missing.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nhello\n\nstray text\n\n2\n00:00:03,000 --> 00:00:04,000\nbye\n"
    )
    with pytest.raises(InputError, match="without a timing line") as exc:
        importers.import_file(missing, "x")
    assert exc.value.line == 5


def test_whisper_json_keeps_segments_and_words():
    src = json.loads((DATA / "json/apollo11.large.words.json").read_text(encoding="utf-8"))
    t = _import("json/apollo11.large.words.json").transcript
    assert len(t.segments) == len(src["segments"])
    assert t.source.format == "whisper" and t.source.language == src["language"]
    for seg, raw in zip(t.segments, src["segments"], strict=True):
        assert (seg.start, seg.end) == (raw["start"], raw["end"])
        assert [w.text for w in seg.words] == [w["text"].strip() for w in raw["words"]]
        assert [w.score for w in seg.words] == [w["confidence"] for w in raw["words"]]


def test_whisperx_json_speakers_from_segments_and_words(tmp_path):
    """whisperX shape (word/score/speaker, unaligned words without times) derived from the real file."""
    src = json.loads((DATA / "json/apollo11.large.words.json").read_text(encoding="utf-8"))
    segs = []
    for k, seg in enumerate(src["segments"][:6]):
        label = f"SPEAKER_0{k % 2}"
        words = [
            {"word": w["text"], "start": w["start"], "end": w["end"], "score": w["confidence"], "speaker": label}
            for w in seg["words"]
        ]
        words[0].pop("start"), words[0].pop("end")  # whisperX leaves e.g. numbers unaligned
        entry = {"start": seg["start"], "end": seg["end"], "text": seg["text"], "words": words}
        if k != 3:
            entry["speaker"] = label  # segment 3 carries its speaker only on the words
        segs.append(entry)
    path = tmp_path / "wx.json"
    path.write_text(json.dumps({"segments": segs, "word_segments": []}), encoding="utf-8")
    t = importers.import_file(path, "x").transcript
    assert t.source.format == "whisperx"
    assert [t.speaker(s.speaker).label for s in t.segments] == ["SPEAKER_00", "SPEAKER_01"] * 3
    assert t.segments[0].words[0].start is None and t.segments[0].words[1].start is not None
    # mapped to people, word-level speakers follow their segment speakers to the new ids
    import datetime as dt

    from pipeline.models import Interview, Person
    from pipeline.transcripts.speakers import map_speakers

    iv = Interview(
        id="x",
        title="Apollo 11",
        date=dt.date(1969, 7, 20),
        people=[Person(name="Houston", role="interviewer"), Person(name="Eagle", role="expert")],
        speaker_map={"SPEAKER_00": "Houston", "SPEAKER_01": "Eagle"},
    )
    mapped, report = map_speakers(t, iv)
    ids = {sp.name: sp.id for sp in mapped.speakers}
    assert report.unmapped == [] and set(ids) == {"Houston", "Eagle"}
    for seg in mapped.segments:
        assert {w.speaker for w in seg.words} == {seg.speaker}


def test_whisper_json_truncated_and_wrong_shape(tmp_path):
    raw = (DATA / "json/apollo11.large.words.json").read_text(encoding="utf-8")
    cut = tmp_path / "cut.json"
    cut.write_text(raw[: len(raw) // 2], encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON") as exc:
        importers.import_file(cut, "x")
    assert exc.value.line and exc.value.line > 1
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"segments": [{"start": 0, "end": 1, "text": "ok"},\n {"start": 1, "text": "no end"}]}')
    with pytest.raises(InputError, match=r"segments\.1\.end") as exc:
        importers.import_file(wrong, "x")
    assert exc.value.line == 2


def _labels(md: str) -> list[str]:
    return re.findall(r"^\*\*([^*\n]+?)(?::\*\*|\*\*:)", md, re.M)


@pytest.mark.parametrize("rel", ["changelog/ship-it-21.md", "changelog/go-time-255.md"])
def test_changelog_keeps_every_speaker_and_every_turn(rel):
    md = (DATA / rel).read_text(encoding="utf-8")
    spoken = [n for n in _labels(md) if n.lower() not in text.PSEUDO_SPEAKERS]
    t = _import(rel).transcript
    assert len(t.segments) == len(spoken)
    assert [t.speaker(s.speaker).name for s in t.segments] == spoken
    assert {sp.name for sp in t.speakers} == set(spoken)
    assert t.source.timing == "estimated"
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts) and all(s.end >= s.start for s in t.segments)
    # no Markdown or stamp syntax survives in the text a quote is checked against
    for seg in t.segments:
        assert "**" not in seg.text and "\\[" not in seg.text and "&quot;" not in seg.text
        assert not re.search(r"\[\d{1,2}:\d{2}", seg.text)


def test_changelog_inline_timestamps_anchor_the_estimate():
    t = _import("changelog/ship-it-21.md").transcript
    # '**Chris Evans:** \[04:01\] So what we're building ...' starts at exactly 4:01
    chris = next(s for s in t.segments if s.text.startswith("So what we're building at Incident.io"))
    assert chris.start == 241.0
    assert "[unintelligible]" in chris.text  # '\[unintelligible 00:04:20.10\]' keeps its note, not its time
    assert "Break" not in {sp.name for sp in t.speakers} and "Jingle" not in {sp.name for sp in t.speakers}


def test_changelog_backwards_timestamp_is_reported_and_ignored():
    imported = _import("changelog/go-time-255.md")
    assert any("goes backwards" in n for n in imported.notes)


def test_plain_text_with_stamps_on_every_turn_is_measured(tmp_path):
    src = tmp_path / "otter.txt"
    src.write_text(
        "[00:00:05] Bob Chen: What broke first?\n"
        "[00:00:09] Alice Moreau: The repo server.\nIt ran out of memory during sync.\n"
        "[00:01:02] Bob Chen: And then?\n",
        encoding="utf-8",
    )
    t = importers.import_file(src, "x").transcript
    assert t.source.timing == "measured"
    assert [(s.start, s.end, t.speaker(s.speaker).name) for s in t.segments] == [
        (5.0, 9.0, "Bob Chen"),
        (9.0, 62.0, "Alice Moreau"),
        (62.0, 63.33, "Bob Chen"),  # 2 words at the slowest plausible rate fitted from the stamps
    ]
    assert t.segments[1].text == "The repo server.\n\nIt ran out of memory during sync."


def test_text_without_labels_or_empty_is_refused(tmp_path):
    none = tmp_path / "none.txt"
    none.write_text("just some words\nwith no speakers\n", encoding="utf-8")
    with pytest.raises(InputError, match="no speaker labels"):
        importers.import_file(none, "x")
    empty = tmp_path / "empty.md"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        importers.import_file(empty, "x")
    latin = tmp_path / "latin.vtt"
    latin.write_bytes("WEBVTT\n\n00:01.000 --> 00:02.000\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8") as exc:
        importers.import_file(latin, "x")
    assert exc.value.line == 4


def test_clock_interpolates_between_anchors_and_drops_backwards_ones():
    clock = Clock([Anchor(100, 60.0), Anchor(200, 100.0), Anchor(250, 90.0)])
    assert clock.at(0) == 0.0 and clock.at(50) == 30.0 and clock.at(150) == 80.0
    assert [a.seconds for a in clock.dropped] == [90.0]
    assert clock.at(300) == pytest.approx(100.0 + 100 / 2.5)  # fitted rate: 100 words in 40 s


def test_unknown_extension_is_refused(tmp_path):
    odd = tmp_path / "notes.docx"
    odd.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="unknown file type"):
        importers.detect_format(odd)
