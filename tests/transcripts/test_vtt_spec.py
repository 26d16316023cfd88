"""kb reads what the WebVTT spec parser reads: mozilla/vtt.js's test suite (tests/data/vtt-js/).

Each of the 151 upstream files that come with the parser's expected cues is read by kb; the
cues with text must match vtt.js's start, end and text (text through the spec's cue text rules:
tags run to '>' or the end, character references decoded; kb's split of a cue by voice is
joined back). Files where vtt.js finds no cue because a timing line is broken are refused by
kb with that line (a caption would silently lose its words).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.transcripts import vtt

ROOT = Path(__file__).parent.parent / "data" / "vtt-js"
FILES = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.vtt"))
_TAG = re.compile(r"<[^>]*(?:>|\Z)")
REFUSED = {  # vtt.js drops the only cue: its timing line is broken
    "cue-times/fraction-digits.vtt": 3,
    "cue-times/incorrect-delimiter.vtt": 3,
    "cue-times/min-mid-digits.vtt": 3,
}


def _norm(text: str) -> str:
    return " ".join(html.unescape(_TAG.sub("", text)).split())


def test_the_suite_is_complete() -> None:
    assert len(FILES) == 151 and all((ROOT / f).with_suffix(".json").is_file() for f in FILES)


@pytest.mark.parametrize("rel", FILES)
def test_kb_reads_what_vttjs_reads(rel: str) -> None:
    expected = json.loads((ROOT / rel).with_suffix(".json").read_text(encoding="utf-8"))["cues"]
    want = [(round(c["startTime"], 3), round(c["endTime"], 3), _norm(c["text"])) for c in expected]
    want = [w for w in want if w[2]]
    if rel in REFUSED:
        assert not want
        with pytest.raises(InputError, match="broken cue timing") as exc:
            vtt.read_cues(ROOT / rel)
        assert exc.value.line == REFUSED[rel] and exc.value.hint
        return
    merged: dict[int | None, list] = {}
    for cue in vtt.read_cues(ROOT / rel, []):
        m = merged.setdefault(cue.line, [cue.start, cue.end, []])
        m[1] = cue.end
        m[2].append(cue.text)
    got = [(round(a, 3), round(b, 3), " ".join(" ".join(t).split())) for a, b, t in merged.values()]
    assert [g for g in got if g[2]] == want


def test_skipped_blocks_are_noted_with_their_line() -> None:
    notes: list[str] = []
    vtt.read_cues(ROOT / "integration/id.vtt", notes)
    assert notes == ["id.vtt:15: cue id line '-->' holds '-->'; WebVTT skips this cue, so kb does too"]
    notes = []
    cues = vtt.read_cues(ROOT / "cuetext/format/double-line-break.vtt", notes)
    assert [c.text for c in cues] == ["- Some line stuff.\n- Another line break."]
    assert len(notes) == 1 and notes[0].startswith("double-line-break.vtt:7: text without a timing line")


def test_spec_timestamps() -> None:
    assert vtt._timing("120:00.000 --> 120:10.000") == (432000.0, 432600.0, "")  # over 59: hours, as vtt.js
    assert vtt._timing("000:00.000 --> 00:02.000 align:end") == (0.0, 2.0, "align:end")
    assert vtt._timing("1:02:03.004-->1:02:03.005") == (3723.004, 3723.005, "")
    for bad in ("00:00.00 --> 00:02.000", "00.00.000 --> 00:02.000", "00:000.000 --> 00:02.000", "-->"):
        assert vtt._timing(bad) is None
