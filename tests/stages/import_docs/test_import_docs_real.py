"""`kb import-docs` on the two real documentation trees (tests/data/docs, see ATTRIBUTION.md).

Every atom must pass the real `kb check` with zero errors; the sources must point at real
headings; a second import must leave every file byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import atoms
from pipeline.config import Settings
from pipeline.models import DocumentSource
from pipeline.reporting import Reporter
from pipeline.stages import check as check_stage
from pipeline.workspace import Workspace
from tests.paths import TESTS_DATA

DOCS = TESTS_DATA / "docs"


def _snapshot(ws: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(ws)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((ws / "atoms").rglob("*.md"))
    }


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Both trees imported once (through the real CLI) into their own workspaces."""
    from pipeline.cli import main

    out = {}
    for name in ("podman", "argocd"):
        ws = tmp_path_factory.mktemp(name) / "ws"
        assert main(["init", str(ws)]) == 0
        code = main(["-w", str(ws), "import-docs", str(DOCS / name), "--tag", name])
        assert code == 0
        out[name] = ws
    return out


@pytest.mark.parametrize("name", ["podman", "argocd"])
def test_real_tree_passes_kb_check_with_zero_errors(imported, name, kb):
    ws = imported[name]
    settings = Settings.load(ws)
    report = check_stage.run(settings, Workspace.at(ws), Reporter())
    errors = [f for f in report.findings if f.severity == "error"]
    assert errors == [], errors[:5]
    assert report.files >= 40
    # and through the command line, as a reviewer or CI runs it
    result = kb("-w", ws, "check", "--no-duplicates", "--format", "json")
    assert result.exit_code == 0, result.stdout[-2000:]
    assert '"errors": 0' in result.stdout


@pytest.mark.parametrize("name", ["podman", "argocd"])
def test_real_atoms_follow_the_contract(imported, name):
    ws = imported[name]
    settings = Settings.load(ws)
    files = Workspace.at(ws).atom_files()
    titles = set()
    parsed = []
    for path in files:
        atom = atoms.read(path)
        parsed.append(atom)
        meta = atom.meta
        assert meta.id == path.stem and meta.type == path.parent.name
        assert meta.status == "draft" and meta.generator.kind == "import"
        assert not atoms.is_human_edited(atom)  # stamped with the fingerprint
        assert name in meta.tags
        assert atoms.word_count(atom.body) <= settings.check.hard_cap_words
        assert meta.title not in titles
        titles.add(meta.title)
        assert meta.sources
        for src in meta.sources:
            assert isinstance(src, DocumentSource)
            lines = (DOCS / name / src.document).read_text(encoding="utf-8").split("\n")
            if src.heading:  # the exact heading text, on the line given
                assert src.heading in lines[src.line - 1], (src, lines[src.line - 1])
                assert lines[src.line - 1].lstrip().startswith("#")
    for atom in parsed:
        for title in atom.meta.related:
            assert title in titles


def test_podman_errors_become_error_atoms_with_their_solution(imported):
    ws = imported["podman"]
    path = ws / "atoms" / "error" / "can-t-use-volume-mount-get-permission-denied.md"
    atom = atoms.read(path)
    assert atom.meta.title == "Can't use volume mount, get permission denied"
    assert [s.heading for s in atom.sections if s.level == 2] == ["How to resolve"]
    assert [(s.document, s.heading, s.line) for s in atom.meta.sources] == [
        ("troubleshooting.md", "2) Can't use volume mount, get permission denied", 19),
        ("troubleshooting.md", "Solution", 26),
    ]
    assert "touch: cannot touch '/content/file': Permission denied" in atom.body
    # every numbered entry of the guide (1-50; 29 does not exist) is an atom of its own
    files = Workspace.at(ws).atom_files()
    entries = {s.heading for p in files for s in atoms.read(p).meta.sources if s.heading[:1].isdigit()}
    assert len(entries) == 49
    assert len(files) == 49
    kinds = {p.parent.name for p in files}
    assert kinds <= {"error", "troubleshooting-tip"} and "error" in kinds


def test_argocd_faq_page_becomes_faq_pairs(imported):
    ws = imported["argocd"]
    faq_atoms = [atoms.read(p) for p in sorted((ws / "atoms" / "faq").glob("*.md"))]
    pairs = [pair for a in faq_atoms if any(s.document == "faq.md" for s in a.meta.sources) for pair in a.faq]
    questions = [p.question for p in pairs]
    assert "How Do I Fix `invalid cookie, longer than max length 4093`?" in questions
    assert "How to rotate Redis secret?" in questions
    assert all(p.answer.strip() for p in pairs)
    # every ## question of faq.md is asked exactly once
    faq_md = (DOCS / "argocd" / "faq.md").read_text(encoding="utf-8")
    h2 = [line for line in faq_md.split("\n") if line.startswith("## ")]
    assert len(pairs) == len(h2) == len(set(questions))
    # the anchor in a heading is dropped from the question, kept in the source heading
    assert "Why are resources of type `SealedSecret` stuck in the `Progressing` state?" in questions


def test_argocd_config_blocks_and_skips(imported):
    ws = imported["argocd"]
    templates = [atoms.read(p) for p in (ws / "atoms" / "config-template").glob("*.md")]
    assert templates
    for atom in templates:
        _, _, code = atoms.parse_body(atom.body)
        assert any(b.lang in ("yaml", "json") for b in code)
    # no atom holds an HTML comment or an MkDocs admonition marker
    for path in Workspace.at(ws).atom_files():
        body = atoms.split(path.read_text(encoding="utf-8")).body
        assert "<!--" not in body
        assert "\n!!! " not in body


@pytest.mark.parametrize("name", ["podman", "argocd"])
def test_real_tree_reimport_is_byte_identical(imported, name, kb):
    ws = imported[name]
    before = _snapshot(ws)
    result = kb("-w", ws, "import-docs", DOCS / name, "--tag", name)
    assert result.exit_code == 0, result.stderr
    assert _snapshot(ws) == before  # same bytes, files not even rewritten
    assert f"created: 0  updated: 0  unchanged: {len(before)}  kept-human-edits: 0" in result.stdout


def test_golden_atoms_of_the_notifications_pages(tmp_path):
    """The exact atom files cut from three real pages (KB_UPDATE_GOLDEN=1 rewrites the golden files)."""
    import datetime as dt
    import os

    from pipeline.stages import import_docs

    ws = tmp_path / "ws"
    (ws / "atoms").mkdir(parents=True)
    src = DOCS / "argocd" / "operator-manual" / "notifications"
    import_docs.run(Settings.load(ws), Workspace.at(ws), Reporter(), src, today=dt.date(2026, 3, 4))
    got = {p.relative_to(ws / "atoms").as_posix(): p.read_text(encoding="utf-8") for p in (ws / "atoms").rglob("*.md")}
    golden = DOCS / "golden" / "notifications"
    if os.environ.get("KB_UPDATE_GOLDEN") == "1":
        import shutil

        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in got.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text, encoding="utf-8")
    want = {p.relative_to(golden).as_posix(): p.read_text(encoding="utf-8") for p in golden.rglob("*.md")}
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], rel
