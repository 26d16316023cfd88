"""`kb transcribe`: import, skip when fresh, merge reviewers' corrections, refuse bad input atomically."""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path

import yaml

from pipeline.config import Settings
from pipeline.models import Transcript
from pipeline.reporting import Reporter
from pipeline.stages import transcribe as transcribe_stage
from pipeline.transcripts import importers, markdown
from pipeline.transcripts import interview as interview_file
from pipeline.workspace import Workspace
from tests.paths import REPO_ROOT, TESTS_DATA

DATA = TESTS_DATA / "transcripts"
REPO = REPO_ROOT
ID = "learning-from-incidents"


def _add_shipit(kb, workspace) -> Path:
    r = kb(
        "-w",
        workspace,
        "add",
        DATA / "changelog/ship-it-21.md",
        "--id",
        ID,
        "--title",
        "Learning from incidents",
        "--date",
        "2021-09-01",
        "--expert",
        "Chris Evans",
        "--expert",
        "Stephen Whitworth",
        "--interviewer",
        "Gerhard Lazu",
    )
    assert r.exit_code == 0, r.stderr
    return workspace / "interviews" / ID


def _load(folder: Path) -> Transcript:
    return Transcript.model_validate_json((folder / "transcript.json").read_text(encoding="utf-8"))


def test_transcribe_imports_then_skips_fresh_and_force_redoes(kb, workspace):
    folder = _add_shipit(kb, workspace)
    r = kb("-w", workspace, "transcribe")
    assert r.exit_code == 0, r.stderr
    assert "1 transcribed, 0 fresh" in r.stdout
    t = _load(folder)
    assert {(s.name, s.role) for s in t.speakers} == {
        ("Gerhard Lazu", "interviewer"),
        ("Chris Evans", "expert"),
        ("Stephen Whitworth", "expert"),
    }
    assert t.source.sha256 == interview_file.load(folder / "interview.yaml").media[0].sha256
    md = (folder / "transcript.md").read_text(encoding="utf-8")
    assert md == markdown.render(t, "Learning from incidents")

    r = kb("-w", workspace, "transcribe", ID)
    assert r.exit_code == 0 and "0 transcribed, 1 fresh" in r.stdout and f"skip: {ID}: transcript is fresh" in r.stderr
    r = kb("-w", workspace, "transcribe", "--force")
    assert r.exit_code == 0 and "1 transcribed" in r.stdout
    assert _load(folder) == t  # deterministic


def test_people_change_remaps_speakers(kb, workspace):
    folder = _add_shipit(kb, workspace)
    assert kb("-w", workspace, "transcribe").exit_code == 0
    path = folder / "interview.yaml"
    data = yaml.safe_load(path.read_text())
    data["people"] = [p for p in data["people"] if p["name"] != "Stephen Whitworth"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    r = kb("-w", workspace, "transcribe")
    assert r.exit_code == 0 and "1 transcribed" in r.stdout
    assert "speaker 'Stephen Whitworth' matches nobody in interview.yaml" in r.stderr
    assert ("Stephen Whitworth", "unknown") in {(s.name, s.role) for s in _load(folder).speakers}


def test_reviewer_corrections_are_merged_kept_and_reapplied(kb, workspace):
    folder = _add_shipit(kb, workspace)
    assert kb("-w", workspace, "transcribe").exit_code == 0
    before = _load(folder)
    md_path = folder / "transcript.md"
    md = md_path.read_text(encoding="utf-8")
    md = md.replace(
        "**[00:03:34] Chris Evans (expert):** Hey. Good to be here.",
        "**[00:03:34] Stephen Whitworth (expert):** Hey. Great to be here.",
    )
    md = md.replace("a demo was had, which", "a demo was done, which")
    md_path.write_text(md, encoding="utf-8")

    r = kb("-w", workspace, "transcribe")
    assert r.exit_code == 0, r.stderr
    assert "3 correction(s) merged from transcript.md" in r.stdout
    assert "merged from transcript.md: segment 2 [00:03:34] speaker 'Chris Evans' -> 'Stephen Whitworth'" in r.stderr
    after = _load(folder)
    seg = after.segments[2]
    assert seg.text == "Hey. Great to be here." and after.speaker(seg.speaker).name == "Stephen Whitworth"
    assert [(s.start, s.end) for s in after.segments] == [(s.start, s.end) for s in before.segments]
    assert "a demo was done" in after.segments[0].text
    assert [(c.segment, c.field) for c in after.corrections] == [(0, "text"), (2, "speaker"), (2, "text")]
    assert md_path.read_text(encoding="utf-8") == markdown.render(after, "Learning from incidents")

    assert "1 fresh" in kb("-w", workspace, "transcribe").stdout  # merged edits are not merged twice
    r = kb("-w", workspace, "transcribe", "--force")  # re-import from the source: corrections survive
    assert r.exit_code == 0 and "re-applied 3 earlier correction(s)" in r.stderr
    assert _load(folder).segments == after.segments


def test_edits_survive_a_deleted_transcript_json(kb, workspace):
    """transcript.json gone (deleted to force a re-import): the edited transcript.md still wins."""
    folder = _add_shipit(kb, workspace)
    assert kb("-w", workspace, "transcribe").exit_code == 0
    md_path = folder / "transcript.md"
    md_path.write_text(md_path.read_text(encoding="utf-8").replace("Hey. Good to be here.", "Hi. Good to be here."))
    (folder / "transcript.json").unlink()
    r = kb("-w", workspace, "transcribe")
    assert r.exit_code == 0 and "1 correction(s) merged" in r.stdout
    assert _load(folder).segments[2].text == "Hi. Good to be here."


def test_unknown_speaker_in_transcript_md_fails_and_writes_nothing(kb, workspace):
    folder = _add_shipit(kb, workspace)
    assert kb("-w", workspace, "transcribe").exit_code == 0
    json_before = (folder / "transcript.json").read_bytes()
    md_path = folder / "transcript.md"
    md = md_path.read_text(encoding="utf-8").replace(
        "**[00:03:34] Chris Evans (expert):**", "**[00:03:34] Chris Evens-Smith (expert):**"
    )
    md_path.write_text(md, encoding="utf-8")
    r = kb("-w", workspace, "transcribe")
    line = md.splitlines().index("**[00:03:34] Chris Evens-Smith (expert):** Hey. Good to be here.") + 1
    assert r.exit_code == 1
    assert f"transcript.md:{line}: speaker 'Chris Evens-Smith' is nobody in interview.yaml" in r.stderr
    assert (folder / "transcript.json").read_bytes() == json_before
    assert md_path.read_text(encoding="utf-8") == md  # the reviewer's file is untouched


def _add_teams(kb, workspace) -> Path:
    r = kb(
        "-w",
        workspace,
        "add",
        DATA / "vtt/teams_timeframe.vtt",
        "--id",
        "teams",
        "--expert",
        "Yuri Bakulin",
        "--interviewer",
        "Adrian Petrescu",
    )
    assert r.exit_code == 0, r.stderr
    return workspace / "interviews/teams"


def test_broken_source_fails_without_a_transcript(kb, workspace):
    """Broken = what the WebVTT parsing rules refuse: a cue whose timing line is damaged would lose its spoken
    text, so the file fails with its name and line and nothing is written. (A block of text without any timing
    line is a tolerated oddity, see the next test.)"""
    folder = _add_teams(kb, workspace)
    (folder / "teams_timeframe.vtt").write_bytes((DATA / "vtt/invalid_timeframe.vtt").read_bytes())
    r = kb("-w", workspace, "transcribe", "teams")
    assert r.exit_code == 1
    assert "teams_timeframe.vtt:6: broken cue timing" in r.stderr
    assert "changed since it was registered" in r.stderr
    assert not (folder / "transcript.json").exists() and not (folder / "transcript.md").exists()
    assert not list(folder.glob(".*.tmp"))


def test_tolerated_oddity_is_skipped_with_a_note_naming_the_line(kb, workspace):
    """A text block with no timing line is skipped as a player skips it (the spec's leniency, issue 17): the
    transcript is written without it and the warning names the file and line, so nothing is lost silently."""
    folder = _add_teams(kb, workspace)
    (folder / "teams_timeframe.vtt").write_bytes((DATA / "vtt/missing_timeframe.vtt").read_bytes())
    r = kb("-w", workspace, "transcribe", "teams")
    assert r.exit_code == 0, r.stderr
    assert "teams_timeframe.vtt:6: text without a timing line" in r.stderr
    transcript = json.loads((folder / "transcript.json").read_text(encoding="utf-8"))
    spoken = " ".join(s["text"] for s in transcript["segments"])
    assert "Caption text #1" in spoken and "Caption text #3" in spoken and "Caption text #2" not in spoken


def test_one_bad_interview_does_not_hold_back_the_others(kb, workspace):
    folder = _add_shipit(kb, workspace)
    assert kb("-w", workspace, "add", DATA / "vtt/teams_timeframe.vtt", "--id", "teams").exit_code == 0
    (workspace / "interviews/teams/teams_timeframe.vtt").write_bytes((DATA / "vtt/invalid_timeframe.vtt").read_bytes())
    r = kb("-w", workspace, "transcribe")
    assert r.exit_code == 1
    assert "1 of 2 interview(s) failed" in r.stderr and "(the others: 1 transcribed, 0 fresh)" in r.stderr
    assert "teams: " in r.stderr and "teams_timeframe.vtt:6: broken cue timing" in r.stderr
    assert (folder / "transcript.json").exists() and not (workspace / "interviews/teams/transcript.json").exists()


def test_unknown_interview_and_damaged_yaml(kb, workspace):
    r = kb("-w", workspace, "transcribe", "nope")
    assert r.exit_code == 1 and "No interview 'nope'" in r.stderr
    folder = workspace / "interviews/broken"
    folder.mkdir(parents=True)
    (folder / "interview.yaml").write_text("id: broken\ntitle: B\ndate: 2026-13-45\n")
    r = kb("-w", workspace, "transcribe", "broken")
    assert r.exit_code == 1 and "interview.yaml:3: 'date'" in r.stderr


def test_recording_without_a_local_asr_model_is_a_clear_error(kb, workspace, tmp_path, monkeypatch):
    wav = tmp_path / "call.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack("<h", 0) * 16000)
    assert kb("-w", workspace, "add", wav, "--id", "call", "--expert", "A B").exit_code == 0
    monkeypatch.setenv("KB_ASR_MODEL", str(tmp_path / "no-such-model"))
    r = kb("-w", workspace, "transcribe", "call")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error:") or "\nError:" in r.stderr
    assert "asr.model" in r.stderr or "asr" in r.stderr.lower()
    assert "Traceback" not in r.stderr
    assert not (workspace / "interviews/call/transcript.json").exists()


def test_run_all_is_the_kb_run_step(kb, workspace):
    _add_shipit(kb, workspace)
    ws = Workspace.at(workspace)
    rep = Reporter()
    report = transcribe_stage.run_all(Settings.load(ws.root), ws, rep, force=False)
    assert str(report) == "1 transcribed, 0 fresh"
    report = transcribe_stage.run_all(Settings.load(ws.root), ws, rep, force=False)
    assert report.fresh == [ID] and ("skip", f"{ID}: transcript is fresh") in rep.lines


def test_shipped_sample_interviews_are_valid_and_reproducible(tmp_path):
    """interviews/ in the repository: valid metadata, and transcript.json re-imports identically."""
    folders = sorted(p.parent for p in (REPO / "interviews").glob("*/interview.yaml"))
    assert folders, "the repository ships sample interviews"
    for folder in folders:
        iv = interview_file.load(folder / "interview.yaml")
        assert iv.attribution and "CC BY-SA 4.0" in iv.attribution
        assert {p.role for p in iv.people} == {"interviewer", "expert"}
        t = _load(folder)
        (media,) = iv.media
        fresh = importers.import_file(folder / media.file, iv.id, sha256=media.sha256, file_label=media.file)
        assert len(fresh.transcript.segments) == len(t.segments)
        assert [s.text for s in fresh.transcript.segments] == [s.text for s in t.segments]
        assert all(sp.role in ("interviewer", "expert") for sp in t.speakers)
        assert (folder / "transcript.md").read_text(encoding="utf-8") == markdown.render(t, iv.title)
        assert json.loads((folder / "transcript.json").read_text())["schema_version"] == 1
