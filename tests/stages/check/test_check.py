"""``kb check`` end to end: real atoms pass, golden outputs, CLI errors, paths, kb run, blocking.

Golden files live in tests/data/check/golden/; rewrite them with KB_UPDATE_GOLDEN=1 after an
intended change and review the diff.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from rapidfuzz import fuzz, process

from pipeline import atoms
from pipeline.config import Settings
from pipeline.reporting import Reporter
from pipeline.stages import check
from pipeline.stages.check.duplicates import near_duplicate_pairs
from pipeline.stages.check.scan import scan
from pipeline.workspace import Workspace
from tests.paths import REPO_ROOT, TESTS_DATA

DATA = TESTS_DATA
GOOD = DATA / "check" / "good"
GOLDEN = DATA / "check" / "golden"
BROKEN = DATA / "broken"


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KB_UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def good_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "good"
    shutil.copytree(GOOD, ws)
    return ws


@pytest.fixture
def mixed_ws(good_ws: Path) -> Path:
    """The good atoms plus three broken ones and a near-duplicate: every output format has content."""
    for name, target, title in [
        ("unknown-field.md", "atoms/error/unknown-field.md", "Repo server restarts during sync"),
        ("faq-no-answer.md", "atoms/error/faq-no-answer.md", "Hooks never finish"),
        ("config-parse.md", "atoms/config-template/config-parse.md", "Reconciliation timeout template"),
    ]:
        text = (BROKEN / name).read_text(encoding="utf-8")
        text = text.replace("Sync fails with 'context deadline exceeded'", title)
        text = text.replace("What the timeout means during sync", f"What {title.lower()} means")
        (good_ws / target).write_text(text, encoding="utf-8")
    src = (good_ws / "atoms/error/application-stuck-in-progressing.md").read_text(encoding="utf-8")
    dup = src.replace("id: application-stuck-in-progressing", "id: app-stuck-progressing").replace(
        "title: \"Application stuck in 'Progressing'\"", 'title: "Application stuck in Progressing"'
    )
    (good_ws / "atoms/error/app-stuck-progressing.md").write_text(dup, encoding="utf-8")
    return good_ws


def test_real_atoms_pass_with_no_findings(kb, good_ws: Path) -> None:
    result = kb("--workspace", good_ws, "check")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "✔ 4 atoms checked: no problems\n"


def test_interview_quotes_are_verified_against_the_transcript(kb, good_ws: Path) -> None:
    atom = good_ws / "atoms/error/application-stuck-in-progressing.md"
    text = atom.read_text(encoding="utf-8")
    atom.write_text(text.replace("start: 42.0\n    end: 49.5", "start: 2.0\n    end: 9.5"), encoding="utf-8")
    result = kb("--workspace", good_ws, "check", "--format", "json")
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["line"]) for f in findings] == [("quote-unverified", 19)]
    assert result.exit_code == 3


def test_human_output_golden(kb, mixed_ws: Path) -> None:
    result = kb("--workspace", mixed_ws, "check")
    assert result.exit_code == 3
    golden("human.txt", result.stdout)


def test_json_output_golden(kb, mixed_ws: Path) -> None:
    result = kb("--workspace", mixed_ws, "check", "--format", "json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert set(report) == {"findings", "summary"}
    for f in report["findings"]:
        assert set(f) == {"path", "line", "column", "severity", "rule", "message", "hint"}
    assert report["summary"]["errors"] == 3 and report["summary"]["files"] == 8
    golden("check.json", result.stdout)


def test_github_output_golden(kb, mixed_ws: Path) -> None:
    result = kb("--workspace", mixed_ws, "check", "--format", "github")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert any(line.startswith("::error file=atoms/config-template/config-parse.md,line=17,col=") for line in lines)
    assert all(line.startswith(("::error ", "::warning ")) for line in lines[:-1])
    golden("github.txt", result.stdout)


def test_no_duplicates_skips_near_duplicate_detection(kb, mixed_ws: Path) -> None:
    with_dupes = json.loads(kb("-w", mixed_ws, "check", "-f", "json").stdout)
    without = json.loads(kb("-w", mixed_ws, "check", "-f", "json", "--no-duplicates").stdout)
    assert {f["rule"] for f in with_dupes["findings"]} >= {"near-duplicate"}
    assert "near-duplicate" not in {f["rule"] for f in without["findings"]}
    assert without["summary"]["duplicates_checked"] is False


def test_paths_select_files_and_folders_but_links_resolve_against_the_workspace(kb, mixed_ws: Path) -> None:
    # a file given alone still resolves `related` titles against every atom of the workspace
    one = kb("-w", mixed_ws, "check", "-f", "json", "atoms/faq/argocd-cli-and-ui-error-messages.md")
    assert one.exit_code == 0 and json.loads(one.stdout)["summary"]["files"] == 1
    folder = kb("-w", mixed_ws, "check", "-f", "json", str(mixed_ws / "atoms/config-template"))
    report = json.loads(folder.stdout)
    assert report["summary"]["files"] == 2
    assert {f["path"] for f in report["findings"]} == {"atoms/config-template/config-parse.md"}
    assert folder.exit_code == 3


def test_proposals_are_not_checked(kb, good_ws: Path) -> None:
    (good_ws / "atoms/error/application-stuck-in-progressing.proposed.md").write_text("not an atom", encoding="utf-8")
    assert kb("-w", good_ws, "check").exit_code == 0


def test_missing_path_is_a_clear_error(kb, good_ws: Path) -> None:
    result = kb("-w", good_ws, "check", "atoms/error/nope.md")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 'atoms/error/nope.md' does not exist.\n"
        "Hint: Pass atom files or folders (default: every atom under atoms/).\n"
    )


def test_unknown_format_is_a_usage_error(kb, good_ws: Path) -> None:
    result = kb("-w", good_ws, "check", "--format", "xml")
    assert result.exit_code == 2
    assert "Invalid value for '--format' / '-f'" in result.stderr
    assert "'xml' is not one of 'human', 'json', 'github'" in result.stderr


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff\xfe binary",
        b"---\n",
        b"---\n---\n",
        b"---\n- a\n- b\n---\n",
        b"---\n: :\n---\n",
        b"---\nid: [\n---\n",
        b"---\ntitle: x\n",
        "---\nid: é\n---\n".encode(),
    ],
    ids=[
        "empty",
        "binary",
        "open-fence",
        "empty-fm",
        "list-fm",
        "bad-key",
        "unclosed-list",
        "unclosed-fm",
        "non-ascii-id",
    ],
)
def test_bad_input_never_raises(kb, good_ws: Path, content: bytes) -> None:
    (good_ws / "atoms/error/odd.md").write_bytes(content)
    result = kb("-w", good_ws, "check", "-f", "json", "atoms/error/odd.md")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["findings"][0]["severity"] == "error"


def test_skeletons_of_every_type_pass_without_errors(kb, workspace: Path) -> None:
    for atom_type in (
        "error",
        "procedure",
        "playbook",
        "interface-input",
        "troubleshooting-tip",
        "config-template",
        "pitfall",
        "faq",
    ):
        assert kb("-w", workspace, "new", atom_type, f"A {atom_type} to write").exit_code == 0
    result = kb("-w", workspace, "check", "-f", "json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    assert {f["rule"] for f in report["findings"]} == {"too-short"}


def test_run_all_skips_when_nothing_changed(good_ws: Path) -> None:
    ws = Workspace.at(good_ws)
    settings = Settings.load(good_ws)
    first = check.run_all(settings, ws, Reporter())
    assert (first.errors, first.warnings, first.files) == (0, 0, 4)
    rep = Reporter()
    second = check.run_all(settings, ws, rep)
    assert [level for level, _ in rep.lines] == ["skip"] and second.files == 4
    shutil.copyfile(BROKEN / "unknown-field.md", good_ws / "atoms/error/unknown-field.md")
    third = check.run_all(settings, ws, Reporter())
    assert third.errors == 1 and third.files == 5
    rep = Reporter()
    forced = check.run_all(settings, ws, rep, force=True)
    assert forced.errors == 1 and "skip" not in [level for level, _ in rep.lines]


def test_kb_run_check_step_exits_3_on_errors(kb, good_ws: Path) -> None:
    shutil.copyfile(BROKEN / "unknown-field.md", good_ws / "atoms/error/unknown-field.md")
    result = kb("-w", good_ws, "run", "--only", "check")
    assert result.exit_code == 3
    assert "check: 5 atom(s): 1 error(s), 1 warning(s)" in result.stdout


# ---------------------------------------------------------------------------------------------
# the fast body scan and the duplicate blocking, against their references


def _all_test_atoms() -> list[Path]:
    return sorted(GOOD.rglob("*.md")) + sorted(BROKEN.glob("*.md"))


@pytest.mark.parametrize("path", _all_test_atoms(), ids=lambda p: p.name)
def test_scan_equals_markdown_it(path: Path) -> None:
    raw = atoms.split(path.read_bytes().decode("utf-8", errors="replace"))  # not-utf8.md too
    sections, faq, code = atoms.parse_body(raw.body, raw.body_line)
    heads, faq2, code2 = scan(raw.body, raw.body_line)
    assert [(s.level, s.line, s.heading) for s in sections] == [(h.level, h.line, h.text) for h in heads]
    assert faq == faq2
    assert code == code2


def test_scan_equals_markdown_it_on_tricky_bodies() -> None:
    bodies = [
        "# T\n\n## A ##\n\n```yaml\na: 1\n```\n\n## FAQ\n\n**Q:** x?\n**A:** y\n",
        "## Steps\n\n1. run\n\n   ```bash\n   kubectl get pods\n   ```\n\n2. done\n",
        '## Template\n\n~~~json\n{"a": 1}\n~~~\n\n```\nunclosed\n## not a heading\n',
        "#NoSpace\n\n## \n\n####### seven\n\n### three ###   \n",
        "Setext\n---\n\n## After\n",  # falls back to markdown-it
        "> ## quoted\n\n<div>\n## html\n</div>\n",  # falls back to markdown-it
        "## FAQ\n\n**Q:** one?\n\n**Q:** two?\n**A:** yes\nmore\n",
    ]
    for body in bodies:
        sections, faq, code = atoms.parse_body(body, 7)
        heads, faq2, code2 = scan(body, 7)
        assert [(s.level, s.line, s.heading) for s in sections] == [(h.level, h.line, h.text) for h in heads], body
        assert faq == faq2 and code == code2, body


def _titles(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = (
        "sync repo server timeout cache redis login token cluster secret health ingress webhook "
        "controller manifest helm kustomize project role policy pod image registry plugin"
    ).split()
    keys = []
    for i in range(n):
        keys.append(" ".join(rng.choice(words) for _ in range(rng.randint(6, 14))) + f" {i}")
        if i % 10 == 9:  # a near-duplicate of the previous key: one character changed
            prev = keys[-2]
            keys[-1] = prev[:-3] + ("x" if prev[-3] != "x" else "y") + prev[-2:]
    return keys


def test_blocking_finds_what_all_pairs_finds() -> None:
    keys = _titles(600, 1)
    found = near_duplicate_pairs(keys, 90.0)
    scores = process.cdist(keys, keys, scorer=fuzz.token_sort_ratio, score_cutoff=90.0, workers=1)
    brute = {(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys)) if scores[i, j] >= 90.0}
    assert len(brute) >= 60
    assert set(found) == brute


def test_check_json_summary_counts_rules(good_ws: Path) -> None:
    shutil.copyfile(BROKEN / "faq-no-answer.md", good_ws / "atoms/error/faq-no-answer.md")
    report = check.run(Settings.load(good_ws), Workspace.at(good_ws), Reporter())
    summary = report.to_json()["summary"]
    assert summary["rules"] == {"faq-no-answer": 1, "too-short": 1}
    assert str(report) == "5 atom(s): 1 error(s), 1 warning(s)"
    assert check.CheckReport.from_json(json.loads(json.dumps(report.to_json()))).findings == report.findings


def test_github_annotations_escape_properties_and_data() -> None:
    report = check.CheckReport(
        findings=[check.Finding("atoms/a,b:c.md", 3, 2, "error", "yaml-syntax", "50% bad\nline", "fix: it")]
    )
    assert report.github_lines() == [
        "::error file=atoms/a%2Cb%3Ac.md,line=3,col=2,title=yaml-syntax::50%25 bad%0Aline%0AHint: fix: it"
    ]


def test_every_rule_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for rule in check.RULES:
        assert f"`{rule}`" in readme, rule


def test_pre_commit_style_call_with_relative_paths(kb, good_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook runs `kb check --no-duplicates FILE...` from the repository root."""
    shutil.copyfile(BROKEN / "unknown-field.md", good_ws / "atoms/error/unknown-field.md")
    monkeypatch.chdir(good_ws)
    result = kb(
        "check", "--no-duplicates", "atoms/error/unknown-field.md", "atoms/faq/argocd-cli-and-ui-error-messages.md"
    )
    assert result.exit_code == 3
    assert result.stdout.splitlines()[0] == "atoms/error/unknown-field.md"
    assert "9       error    unknown-field         unknown field 'sumary'" in result.stdout


def test_real_kb_script_exit_codes(good_ws: Path) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).with_name("kb")
    ok = subprocess.run([str(script), "-w", str(good_ws), "check", "-f", "json"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["summary"]["errors"] == 0
    (good_ws / "atoms/error/bad.md").write_bytes(b"---\nid: [\n---\n\xff")
    bad = subprocess.run([str(script), "-w", str(good_ws), "check"], capture_output=True, text=True)
    assert bad.returncode == 3 and "Traceback" not in bad.stderr + bad.stdout
    assert "not-utf8" in bad.stdout


def test_many_copies_give_a_few_warnings_each(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "atoms/faq").mkdir(parents=True)
    (ws / "kb.yaml").write_text("{}\n", encoding="utf-8")
    for i in range(12):
        (ws / f"atoms/faq/copy-{i:02d}.md").write_text(
            f"---\nid: copy-{i:02d}\ntitle: Untitled question\ntype: faq\ncreated: 2026-03-04\n---\n"
            "## FAQ\n\n**Q:** Why?\n**A:** Because.\n",
            encoding="utf-8",
        )
    report = check.run(Settings.load(ws), Workspace.at(ws), Reporter())
    dupes = [f for f in report.findings if f.rule == "near-duplicate"]
    assert len(dupes) == 12 * 3
    first = [f.message for f in dupes if f.path == "atoms/faq/copy-00.md"]
    assert first[0].startswith("nearly the same title and summary as atoms/faq/copy-01.md")
    assert first[-1].endswith("; and 8 more")


def test_config_error_column_inside_an_indented_fence(kb, good_ws: Path) -> None:
    text = (BROKEN / "config-parse.md").read_text(encoding="utf-8")
    text = text.replace(
        "```yaml\ndata:\n  timeout.reconciliation: 180s\n   timeout.hard: 0s\n```",
        "1. Put this in argocd-cm:\n\n   ```yaml\n   data:\n     timeout: 180s\n      hard: 0s\n   ```",
    )
    (good_ws / "atoms/config-template/config-parse.md").write_text(text, encoding="utf-8")
    report = json.loads(kb("-w", good_ws, "check", "-f", "json", "atoms/config-template/config-parse.md").stdout)
    hit = [f for f in report["findings"] if f["rule"] == "config-parse"][0]
    line = text.split("\n")[hit["line"] - 1]
    assert line == "      hard: 0s"
    assert line[hit["column"] - 1] == ":"
