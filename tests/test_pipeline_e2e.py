"""The whole job a user runs, end to end through the real CLI: a transcript from a meeting tool
becomes grounded atoms, a checked workspace, a review site, a DuckDB bundle and a cited answer."""

from __future__ import annotations

import json
import shutil
import struct
import wave

import duckdb
import pytest

from tests.conftest import DATA
from tests.extras import needs_extra

GO_TIME = DATA / "transcripts" / "changelog" / "go-time-255.md"


@needs_extra("embed", "site")
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
    # a recording whose ASR model is not here: its failure must not hold back the transcript above
    wav = workspace.parent / "call.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack("<h", 0) * 16000)
    assert kb("-w", workspace, "add", wav, "--id", "call", "--expert", "A B").exit_code == 0
    (workspace / "kb.yaml").write_text(
        (workspace / "kb.yaml").read_text(encoding="utf-8")
        + f"\nasr:\n  model: {workspace.parent / 'no-such-model'}\n",
        encoding="utf-8",
    )

    first = kb("-w", workspace, "run")
    assert first.exit_code == 1, first.stderr + first.stdout  # the failure, at the end
    for step in ("transcribe:", "distill:", "check:", "site:", "export:"):
        assert step in first.stdout  # ... after every step ran for the others
    assert "failed: transcribe call:" in first.stderr and "1 interview(s) failed (call)" in first.stderr
    assert "Traceback" not in first.stderr
    shutil.rmtree(workspace / "interviews" / "call")  # the interviewer fixes it (here: drops it)

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
