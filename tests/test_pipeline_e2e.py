"""The whole job a user runs, end to end through the real CLI: a transcript from a meeting tool
becomes grounded atoms, a checked workspace, a review site, a DuckDB bundle and a cited answer."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.conftest import DATA

GO_TIME = DATA / "transcripts" / "changelog" / "go-time-255.md"


@pytest.mark.slow
def test_transcript_to_cited_answer(workspace, kb):
    added = kb(
        "-w",
        workspace,
        "add",
        GO_TIME,
        "--id",
        "go-time-255",
        "--title",
        "Go Time #255: debugging in production",
        "--date",
        "2022-11-03",
        "--interviewer",
        "Natalie Pistunovich",
        "--interviewer",
        "Ian Lopshire",
        "--expert",
        "Tiago Queiroz",
        "--expert",
        "Liran Haimovitch",
    )
    assert added.exit_code == 0, added.stderr

    first = kb("-w", workspace, "run")
    assert first.exit_code == 0, first.stderr + first.stdout
    for step in ("transcribe:", "distill:", "check:", "site:", "export:"):
        assert step in first.stdout

    # Atoms: grounded, every quote by an expert of this interview.
    atom_files = sorted((workspace / "atoms").rglob("*.md"))
    assert atom_files, "distillation wrote no atoms"
    from pipeline import atoms as atoms_mod

    experts = {"Tiago Queiroz", "Liran Haimovitch"}
    for path in atom_files:
        if path.name.endswith(".proposed.md"):
            continue
        atom = atoms_mod.read(path)
        assert atom.meta.sources, path
        assert {s.speaker for s in atom.meta.sources} <= experts, path

    check = kb("-w", workspace, "check", "--format", "json")
    assert check.exit_code == 0, check.stdout
    assert json.loads(check.stdout)["summary"]["errors"] == 0

    site = workspace / "build" / "site"
    assert (site / "index.html").is_file()
    assert list((site / "interviews").glob("go-time-255*"))

    bundles = sorted((workspace / "dist").glob("kb-*.duckdb"))
    assert len(bundles) == 1
    with duckdb.connect(str(bundles[0]), read_only=True) as con:
        assert con.execute("select count(*) from atoms").fetchone()[0] == len(
            [p for p in atom_files if not p.name.endswith(".proposed.md")]
        )

    # A second run skips every fresh step and says so.
    second = kb("-w", workspace, "run")
    assert second.exit_code == 0
    assert "skip:" in second.stderr

    # Ask: the answer cites an atom and, through it, the expert's words and second.
    first_atom = atoms_mod.read(atom_files[0])
    assert first_atom.faq, "extractive atoms are FAQ pairs"
    question = first_atom.faq[0].question
    asked = kb("-w", workspace, "ask", question, "--bundle", bundles[0], "--format", "json")
    assert asked.exit_code == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["citations"], answer
    cited = answer["citations"][0]
    assert cited["sources"] and cited["sources"][0]["speaker"] in experts
    assert isinstance(cited["sources"][0]["start"], (int, float))
