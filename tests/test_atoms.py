"""Atom files: byte-identical round trips on real atoms, FAQ parsing, ``kb new`` golden skeletons."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest

from pipeline import atoms
from pipeline.models import ATOM_TYPES, TYPE_SECTIONS

DATA = Path(__file__).parent / "data" / "check"
REAL = sorted((DATA / "good" / "atoms").rglob("*.md"))
GOLDEN_NEW = DATA / "golden" / "new"


def golden(path: Path, text: str) -> None:
    if os.environ.get("KB_UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_real_atom_round_trips_byte_identical(tmp_path: Path, path: Path) -> None:
    original = path.read_bytes()
    atom = atoms.read(path)
    assert atoms.render(atom.meta, atom.body, original.decode("utf-8")).encode("utf-8") == original
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    before = copy.stat().st_mtime_ns
    atoms.write(copy, atom.meta, atom.body)
    assert copy.read_bytes() == original
    assert copy.stat().st_mtime_ns == before  # unchanged content is not even rewritten


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_changing_one_key_changes_only_its_lines(tmp_path: Path, path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    atom = atoms.read(path)
    meta = atom.meta.model_copy(update={"version": atom.meta.version + 1})
    text = atoms.render(meta, atom.body, original)
    diff = [
        line
        for line in difflib.unified_diff(original.splitlines(), text.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff[-1] == f"+version: {atom.meta.version + 1}"
    assert all(line.startswith("-version:") for line in diff[:-1])
    assert atoms.parse(text).meta == meta


def test_faq_pairs_from_a_real_faq_atom() -> None:
    atom = atoms.read(DATA / "good/atoms/faq/argocd-cli-and-ui-error-messages.md")
    assert len(atom.faq) == 7
    first = atom.faq[0]
    assert first.question == (
        "Why am I getting `rpc error: code = Unavailable desc = transport is closing` when using the CLI?"
    )
    assert first.line == 28
    assert first.answer.startswith("Maybe you're behind a proxy that does not support HTTP 2.")
    assert first.answer.endswith("instead of typing it every time.")
    assert "\n" in first.answer  # multi-line answers keep their lines
    assert [p.line for p in atom.faq] == [28, 34, 41, 48, 55, 64, 73]
    assert atom.faq[-1].question == "How can I terminate a sync?"


def test_faq_and_sections_of_a_real_error_atom() -> None:
    atom = atoms.read(DATA / "good/atoms/error/application-stuck-in-progressing.md")
    headings = [s.heading for s in atom.sections if s.level == 2]
    assert headings == list(TYPE_SECTIONS["error"])
    assert [p.question for p in atom.faq][
        1
    ] == "Which ingress controllers are known not to update the load balancer status?"
    assert all(p.answer for p in atom.faq)
    assert atom.meta.sources[0].quote.startswith("if an ingress stays progressing")
    assert atom.meta.sources[1].heading == "Why is my application stuck in `Progressing` state?"


def test_faq_question_without_answer_and_multiline_question() -> None:
    body = "## FAQ\n\n**Q:** first\nline two?\n**A:** yes\n\n**Q:** unanswered?\n\n## Other\n\ntext\n"
    _, faq, _ = atoms.parse_body(body, 10)
    assert [(p.question, p.answer, p.line) for p in faq] == [
        ("first line two?", "yes", 12),
        ("unanswered?", "", 16),
    ]


@pytest.mark.parametrize("atom_type", ATOM_TYPES)
def test_kb_new_golden_skeletons(kb, workspace: Path, monkeypatch: pytest.MonkeyPatch, atom_type: str) -> None:
    monkeypatch.setenv("KB_TODAY", "2026-03-04")
    title = f"Example {atom_type} atom"
    result = kb("-w", workspace, "new", atom_type, title, "--author", "Alice Moreau")
    assert result.exit_code == 0, result.stderr
    rel = f"atoms/{atom_type}/example-{atom_type}-atom.md"
    assert result.stdout == rel + "\n"
    text = (workspace / rel).read_text(encoding="utf-8")
    golden(GOLDEN_NEW / f"{atom_type}.md", text)
    atom = atoms.parse(text)
    assert [s.heading for s in atom.sections if s.level == 2] == list(TYPE_SECTIONS[atom_type])
    assert atoms.render(atom.meta, atom.body, text) == text


def test_kb_new_refuses_to_overwrite(kb, workspace: Path) -> None:
    assert kb("-w", workspace, "new", "error", "Sync fails").exit_code == 0
    path = workspace / "atoms/error/sync-fails.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nA reviewer's edit.\n", encoding="utf-8")
    edited = path.read_bytes()
    result = kb("-w", workspace, "new", "error", "Sync fails")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path} already exists; kb does not overwrite it.\n"
        "Hint: Choose another title or id, or delete the file first if you really mean to.\n"
    )
    assert path.read_bytes() == edited


def test_kb_new_unknown_type_suggests_the_nearest(kb, workspace: Path) -> None:
    result = kb("-w", workspace, "new", "eror", "Sync fails")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: unknown atom type 'eror'",
        "Hint: Did you mean 'error'? Types: " + ", ".join(ATOM_TYPES) + ".",
    ]


def test_kb_today_must_be_a_date(kb, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_TODAY", "yesterday")
    result = kb("-w", workspace, "new", "faq", "Questions")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: KB_TODAY='yesterday' is not a date.\n")
    assert not (workspace / "atoms/faq/questions.md").exists()
