"""kb eval: recall@k and MRR on hand-written atoms and on atoms imported from the real Podman and
Argo CD docs (tests/data/docs, see ATTRIBUTION.md), JSONL golden sets, the --min-recall gate."""

from __future__ import annotations

import json
import shutil

import pytest
from bundle_support import embedder, export, make_workspace

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.reporting import Reporter
from pipeline.stages import evaluate
from tests.paths import TESTS_DATA

DOCS = TESTS_DATA / "docs"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("eval") / "ws")
    export(ws)
    return ws


def run_eval(ws, **kwargs):
    return evaluate.run(Settings.load(ws.root), ws, Reporter(), embedder=embedder(), **kwargs)


def test_faq_questions_find_their_atoms(small):
    report = run_eval(small)
    assert report.questions == 4 and report.golden == "FAQ questions"
    assert report.recall == {1: 1.0, 5: 1.0, 10: 1.0} and report.mrr == 1.0
    held = run_eval(small, holdout=True)
    assert held.questions == 4 and held.golden == "FAQ questions, own pair held out"
    assert held.recall[10] == 1.0  # three atoms: the right one is still in the top 10
    assert all(r.top for r in held.results)


def test_jsonl_questions_by_atom_and_by_source(small, tmp_path):
    qs = tmp_path / "golden.jsonl"
    qs.write_text(
        "\n".join(
            [
                "# comment lines and blank lines are skipped",
                json.dumps(
                    {
                        "question": "Who should I blame when rendering manifests times out?",
                        "expected_atoms": ["argocd-sync-context-deadline-exceeded"],
                    }
                ),
                "",
                json.dumps({"question": "change the db credentials", "expected_sources": ["runbooks/postgres.md"]}),
                json.dumps({"question": "what did Alice say about deadlines", "expected_sources": "2026-03-04-alice"}),
                json.dumps({"question": "How do I bake sourdough bread?", "expected": "old-ldap-tip"}),
            ]
        )
    )
    report = run_eval(small, questions=qs, k=2)
    assert report.questions == 4
    ranks = {r.question: r.rank for r in report.results}
    assert ranks["How do I bake sourdough bread?"] is None  # archived atom: not in the bundle
    assert ranks["change the db credentials"] == 1
    assert report.recall[2] == 0.75 and set(report.recall) == {1, 2, 5, 10}


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"question": "x", "expected_atoms": ["a"]', r"golden\.jsonl:2:\d+: not valid JSON"),
        ('{"expected_atoms": ["a"]}', r"golden\.jsonl:2: the line has no 'question'"),
        ('{"question": "x"}', r"golden\.jsonl:2: the question names no expected atoms or sources"),
    ],
)
def test_bad_jsonl_lines_are_reported_with_file_and_line(small, tmp_path, line, message):
    qs = tmp_path / "golden.jsonl"
    qs.write_text(json.dumps({"question": "ok", "expected": "a"}) + "\n" + line + "\n")
    with pytest.raises(InputError, match=message):
        run_eval(small, questions=qs)


def test_cli_table_json_and_min_recall_gate(kb, small, tmp_path, monkeypatch):
    monkeypatch.chdir(small.root)
    r = kb("eval")
    assert r.exit_code == 0, r.stderr
    assert "recall@1" in r.stdout and "recall@10" in r.stdout and "MRR@10" in r.stdout and "4 questions" in r.stdout
    r = kb("eval", "--format", "json", "--k", "5")
    data = json.loads(r.stdout)
    assert data["questions"] == 4 and data["recall"] == {"@1": 1.0, "@5": 1.0, "@10": 1.0} and data["k"] == 5
    qs = tmp_path / "hard.jsonl"
    qs.write_text(json.dumps({"question": "How do I bake sourdough bread?", "expected": "old-ldap-tip"}) + "\n")
    r = kb("eval", "--questions", qs, "--min-recall", "0.9")
    assert r.exit_code == 3 and "recall@10 is 0.000, below --min-recall 0.900" in r.stderr
    assert kb("eval", "--min-recall", "0.9").exit_code == 0
    r = kb("eval", "--bundle", tmp_path / "nope.duckdb")
    assert r.exit_code == 1 and "does not exist" in r.stderr


def test_no_bundle_says_how_to_make_one(kb, tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "empty", atoms={})
    monkeypatch.chdir(ws.root)
    r = kb("eval")
    assert r.exit_code == 1 and "No bundle (kb-*.duckdb)" in r.stderr and "kb export" in r.stderr


@pytest.fixture(scope="module")
def real_docs(tmp_path_factory):
    """Atoms cut by the real `kb import-docs` from the Podman troubleshooting guide and the Argo CD FAQ."""
    from pipeline.stages import import_docs

    root = tmp_path_factory.mktemp("realdocs")
    ws = make_workspace(root / "ws", atoms={})
    docs = root / "docs"
    (docs / "podman").mkdir(parents=True)
    (docs / "argocd").mkdir(parents=True)
    shutil.copy(DOCS / "podman" / "troubleshooting.md", docs / "podman")
    shutil.copy(DOCS / "argocd" / "faq.md", docs / "argocd")
    settings = Settings.load(ws.root)
    import_docs.run(settings, ws, Reporter(), docs / "podman", tags=["podman"])
    import_docs.run(settings, ws, Reporter(), docs / "argocd", tags=["argocd"])
    export(ws)
    return ws


def test_eval_on_atoms_imported_from_real_docs(real_docs):
    report = run_eval(real_docs)
    assert report.questions >= 20  # the Argo CD FAQ page becomes FAQ pairs
    # Every question finds its atom in the top 5 and nearly always first (measured: 1.0 / 0.93).
    assert report.recall[5] == 1.0 and report.recall[1] >= 0.85 and report.mrr >= 0.9
    held = run_eval(real_docs, holdout=True)
    # Without its own pair an FAQ question must be found through the atom's other passages:
    # harder, and the imported docs repeat questions in other atoms (measured ~0.7).
    assert 0.4 <= held.recall[10] < 1.0 and held.mrr < report.mrr


def test_eval_jsonl_on_real_docs_by_source(real_docs, tmp_path):
    qs = tmp_path / "golden.jsonl"
    qs.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {
                    "question": "podman says permission denied when I mount a volume",
                    "expected_sources": ["troubleshooting.md"],
                },
                {"question": "rootless containers cannot ping other hosts", "expected_sources": ["troubleshooting.md"]},
                {"question": "How do I reset the admin password of Argo CD?", "expected_sources": ["faq.md"]},
            ]
        )
    )
    report = run_eval(real_docs, questions=qs, k=5)
    assert report.recall[1] == 1.0, [(r.question, r.top) for r in report.results]
