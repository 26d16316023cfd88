"""The offline extractive backend on real Changelog transcripts (CC BY-SA 4.0, Changelog Media).

Imported with the real importer and speaker mapping; the atoms must pass ``kb check`` and every
quote must verify against the transcript (and be an exact substring of an expert's turn).
"""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
import yaml

from pipeline import atoms
from pipeline.config import Settings
from pipeline.models import Interview, Person
from pipeline.reporting import Reporter
from pipeline.stages import check, distill
from pipeline.stages.distill.windows import turns
from pipeline.transcripts.grounding import verify_quote
from pipeline.transcripts.importers import import_file
from pipeline.transcripts.speakers import map_speakers
from pipeline.workspace import Workspace
from tests.fakes.distill_model import excerpt, make_workspace
from tests.paths import TESTS_DATA

DATA = TESTS_DATA / "distill"
GOLDEN = DATA / "golden"

EPISODES = {
    "ship-it-59": ("Ship It! #59: SQLite and Litestream", [("Gerhard Lazu", "interviewer"), ("Ben Johnson", "expert")]),
    "the-changelog-530": (
        "The Changelog #530: SLOs and error budgets",
        [("Adam Stacoviak", "interviewer"), ("Marcin Kurc", "expert")],
    ),
}


@pytest.fixture(scope="module")
def changelog_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("changelog") / "ws"
    root.mkdir()
    (root / "kb.yaml").write_text("", encoding="utf-8")
    transcripts = {}
    for iid, (title, people) in EPISODES.items():
        folder = root / "interviews" / iid
        folder.mkdir(parents=True)
        interview = Interview(
            id=iid, title=title, date=dt.date(2022, 7, 1), people=[Person(name=n, role=r) for n, r in people]
        )  # type: ignore[arg-type]
        (folder / "interview.yaml").write_text(yaml.safe_dump(interview.model_dump(mode="json")), encoding="utf-8")
        transcript = import_file(DATA / f"{iid}.md", iid).transcript
        transcript, report = map_speakers(transcript, interview)
        assert not report.unmapped, report.unmapped
        (folder / "transcript.json").write_text(transcript.model_dump_json(exclude_none=True), encoding="utf-8")
        transcripts[iid] = transcript
    ws = Workspace.at(root)
    result = distill.run(Settings.load(root), ws, Reporter())
    return ws, transcripts, result


def test_extractive_atoms_pass_kb_check(changelog_ws):
    ws, _, result = changelog_ws
    assert result.backend == "extractive" and result.interviews == 2
    assert result.created >= 10
    report = check.run(Settings.load(ws.root), ws, Reporter())
    errors = [f for f in report.findings if f.severity == "error"]
    assert not errors, errors[:5]


def test_every_quote_verifies_and_is_an_exact_expert_substring(changelog_ws):
    ws, transcripts, _ = changelog_ws
    n = 0
    for path in ws.atom_files():
        atom = atoms.read(path)
        assert atom.meta.type == "faq" and atom.meta.generator.kind == "extractive"
        assert len(atom.faq) == len(atom.meta.sources) >= 1
        for src, pair in zip(atom.meta.sources, atom.faq, strict=True):
            tr = transcripts[src.interview]
            g = verify_quote(tr, src.speaker, src.start, src.end, src.quote)
            assert g.ok and g.speaker_role == "expert", (path.name, g.reason)
            expert_text = [t.text for t in turns(tr) if t.role == "expert" and t.name == src.speaker]
            assert any(src.quote in t for t in expert_text)
            assert pair.answer == src.quote  # the answer is the expert's own words
            n += 1
    assert n >= 20


def test_interviewer_questions_seed_the_faq(changelog_ws):
    ws, transcripts, _ = changelog_ws
    asked = {iid: " ".join(t.text for t in turns(tr) if t.role == "interviewer") for iid, tr in transcripts.items()}
    for path in ws.atom_files():
        atom = atoms.read(path)
        iid = atom.meta.sources[0].interview
        for pair in atom.faq:
            assert pair.question in asked[iid]


def test_rerun_is_skipped_then_forced_run_changes_nothing(changelog_ws):
    ws, _, first = changelog_ws
    settings = Settings.load(ws.root)
    again = distill.run(settings, ws, Reporter())
    assert again.skipped == 2 and again.interviews == 0
    forced = distill.run(settings, ws, Reporter(), force=True)
    assert forced.unchanged == first.created and forced.created == forced.updated == 0


def test_human_edit_of_an_extractive_atom_survives(tmp_path, kb):
    root = make_workspace(tmp_path / "ws", {"ship-it-59": excerpt()})
    assert kb("-w", root, "distill").exit_code == 0
    path = sorted((root / "atoms" / "faq").glob("*.md"))[0]
    generated = path.read_text()
    text = generated.replace("**A:**", "**A:** (Reviewed.)", 1)
    path.write_text(text)
    forced = kb("-w", root, "distill", "--force")
    assert forced.exit_code == 0 and "1 proposal(s)" in forced.stdout
    assert path.read_text() == text  # the reviewer's file is untouched
    proposal = path.with_name(path.stem + ".proposed.md")
    assert "(Reviewed.)" not in proposal.read_text()
    assert atoms.parse(proposal.read_text()).faq == atoms.parse(generated).faq
    stamp = proposal.stat().st_mtime_ns
    again = kb("-w", root, "distill", "--force")
    assert again.exit_code == 0 and "0 proposal(s)" in again.stdout  # same proposal: not rewritten
    assert proposal.stat().st_mtime_ns == stamp


def test_golden_extractive_atom(tmp_path):
    root = make_workspace(tmp_path / "ws", {"ship-it-59": excerpt()})
    ws = Workspace.at(root)
    distill.run(Settings.load(root), ws, Reporter())
    files = ws.atom_files()
    assert files
    text = "\n".join(f"=== {p.name}\n" + p.read_text() for p in files)
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "DATE", text)
    text = re.sub(r"content_hash: [0-9a-f]{64}", "content_hash: HASH", text)
    golden = GOLDEN / "extractive-excerpt.md"
    if os.environ.get("KB_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
