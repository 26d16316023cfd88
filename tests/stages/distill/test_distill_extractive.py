"""The offline extractive backend on real Changelog transcripts (CC BY-SA 4.0, Changelog Media).

Two interviews the demo does not use (Ship It! #36, The Changelog #530), imported with the real
importer and speaker mapping. The atoms must pass ``kb check``; every quote must verify against
the transcript (and be an exact substring of an expert's turn); and the atoms must pass a
reviewer's rubric without NLP models: whole stand-alone questions, answers ending at a sentence
end, titles in plain words (no keyword lists), one screen or a ``needs`` note saying why not.
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
    "ship-it-36": (
        "Ship It! #36: Grafana OnCall",
        [("Gerhard Lazu", "interviewer"), ("Matvey Kukuy", "expert"), ("Ildar Iskhakov", "expert")],
    ),
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
    assert result.created >= 6
    report = check.run(Settings.load(ws.root), ws, Reporter())
    errors = [f for f in report.findings if f.severity == "error"]
    assert not errors, errors[:5]


def test_every_quote_verifies_and_is_an_exact_expert_substring(changelog_ws):
    ws, transcripts, _ = changelog_ws
    n = 0
    for path in ws.atom_files():
        atom = atoms.read(path)
        assert atom.meta.generator.kind == "extractive" and atom.meta.status == "draft"
        assert len(atom.faq) == len(atom.meta.sources) >= 1
        for src, pair in zip(atom.meta.sources, atom.faq, strict=True):
            tr = transcripts[src.interview]
            g = verify_quote(tr, src.speaker, src.start, src.end, src.quote)
            assert g.ok and g.speaker_role == "expert", (path.name, g.reason)
            expert_text = [t.text for t in turns(tr) if t.role == "expert" and t.name == src.speaker]
            assert any(src.quote in t for t in expert_text)
            assert pair.answer == src.quote  # the answer is the expert's own words
            n += 1
    assert n >= 25


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_interviewer_questions_seed_the_faq(changelog_ws):
    """Questions are the interviewer's own words (fillers and vocatives left out), from one turn."""
    ws, transcripts, _ = changelog_ws
    asked = {
        iid: [set(_words(t.text)) for t in turns(tr) if t.role == "interviewer"] for iid, tr in transcripts.items()
    }
    for path in ws.atom_files():
        atom = atoms.read(path)
        iid = atom.meta.sources[0].interview
        for pair in atom.faq:
            assert any(set(_words(pair.question)) <= turn for turn in asked[iid]), pair.question


LEADING = {"and", "but", "so", "or", "because", "okay", "ok", "well", "yeah", "now", "also", "then", "like", "um", "uh"}
BARE = re.compile(
    r"^(?:it|that|this|they|those|these|he|she)\b|\b(?:like that|about that|did that|do that|that one|"
    r"about it|you said|you mentioned|you just said)\b",
    re.I,
)
KEYWORD_LIST = re.compile(r"^[\w'-]+(?:, [\w'-]+)+ and [\w'-]+$|^[\w'-]+, [\w'-]+$")


def rubric(atom) -> list[str]:
    """What a reviewer would have to fix in an extractive atom (no NLP models: plain rules)."""
    problems = []
    if KEYWORD_LIST.match(atom.meta.title):
        problems.append(f"keyword-list title {atom.meta.title!r}")
    for pair in atom.faq:
        q, a = pair.question, pair.answer
        first = re.split(r"(?<=[.?!])\s+", q)[0]
        if not q.endswith("?"):
            problems.append(f"question without '?': {q!r}")
        if not 6 <= len(q.split()) <= 45:
            problems.append(f"question of {len(q.split())} words: {q!r}")
        if q.split()[0].lower().strip(",") in LEADING or "..." in q or "…" in q:
            problems.append(f"leading conjunction or ellipsis: {q!r}")
        if "you know what i mean" in q.lower():
            problems.append(f"filler: {q!r}")
        if BARE.search(first):
            problems.append(f"does not stand alone: {q!r}")
        if not re.search(r"[.!?][\"')\]”’]*$", a) or a.endswith(("...", "…", "--")):
            problems.append(f"answer cut mid-sentence: ...{a[-40:]!r}")
    return problems


def test_atoms_pass_the_reviewers_rubric(changelog_ws):
    ws, _, _ = changelog_ws
    problems, sizes, types = [], [], {}
    for path in ws.atom_files():
        atom = atoms.read(path)
        problems += [f"{path.name}: {p}" for p in rubric(atom)]
        words = atoms.word_count(atom.body)
        sizes.append(words)
        types[atom.meta.type] = types.get(atom.meta.type, 0) + 1
        assert words <= 850, (path.name, words)
        if words < 400:  # rough atoms say so
            assert any(n.startswith("length:") for n in atom.meta.needs), (path.name, words, atom.meta.needs)
    in_screen = sum(400 <= w <= 850 for w in sizes)
    print(
        f"\nrubric: {len(problems)} problem(s) over {len(sizes)} atoms; {in_screen}/{len(sizes)} atoms of one "
        f"screen (400-800 words, median {sorted(sizes)[len(sizes) // 2]}); types {types}"
    )
    assert problems == [], problems
    assert in_screen * 2 >= len(sizes)


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


def _pair(question: str, answer: str):
    from pipeline.models import InterviewSource
    from pipeline.stages.distill.extractive import Pair

    src = InterviewSource(interview="x", speaker="E", start=0, end=1, quote=answer)
    return Pair(question, answer, src, "I", "E")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "First, you stop the replica. Then you copy the WAL files over. Next you start it with the new config. "
            "Finally you check the lag.",
            "procedure",
        ),
        (
            'When you see "connection refused" in the logs, it usually means the sidecar is not up yet. '
            "You fix it by adding a readiness probe.",
            "error",
        ),
        (
            "We always run it with --read-only so that nothing is written by accident, and the default is off.",
            "interface-input",
        ),
        (
            "You should never restart all nodes at once. Don't skip the drain step either. "
            "We never let people deploy on Friday evenings. Teams avoid that because the pager gets loud.",
            "pitfall",
        ),
        ("I think it was a good year for us and we learned a lot about our customers and what they want.", "faq"),
    ],
)
def test_type_is_inferred_from_the_experts_words(answer, expected):
    from pipeline.stages.distill.shape import fill_sections, infer_type

    members = [_pair("How do you handle a replica that falls behind?", answer)]
    atom_type, why = infer_type(members)
    assert atom_type == expected, why
    sections = dict(fill_sections(atom_type, members))
    for text in sections.values():  # every section line is the expert's own sentence
        for line in text.splitlines():
            assert line.split(" ", 1)[1] in answer
