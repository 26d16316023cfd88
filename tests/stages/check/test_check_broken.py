"""The broken-atom corpus (tests/data/broken/): one file per rule, each through the real CLI.

Every case copies the shared context (an atom to link to, a config schema, an interview with a
transcript) and one broken file into a fresh workspace, runs ``kb check --format json FILE``
and asserts the rule, its line, its severity and the exit code; no other error may fire.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.paths import TESTS_DATA

DATA = TESTS_DATA / "broken"

# (file in tests/data/broken, where it goes in the workspace, rule, line, severity, exit code)
CASES = [
    ("not-utf8.md", "atoms/error/not-utf8.md", "not-utf8", 14, "error", 3),
    ("no-front-matter.md", "atoms/error/no-front-matter.md", "no-front-matter", 1, "error", 3),
    ("empty-front-matter.md", "atoms/error/empty-front-matter.md", "empty-front-matter", 1, "error", 3),
    ("yaml-syntax.md", "atoms/error/yaml-syntax.md", "yaml-syntax", 3, "error", 3),
    ("yaml-aliases.md", "atoms/error/yaml-aliases.md", "yaml-syntax", 2, "error", 3),
    ("duplicate-key.md", "atoms/error/duplicate-key.md", "duplicate-key", 9, "error", 3),
    ("missing-field.md", "atoms/error/missing-field.md", "missing-field", 1, "error", 3),
    ("missing-field-source.md", "atoms/error/missing-field-source.md", "missing-field", 10, "error", 3),
    ("unknown-field.md", "atoms/error/unknown-field.md", "unknown-field", 9, "error", 3),
    ("wrong-type.md", "atoms/error/wrong-type.md", "wrong-type", 9, "error", 3),
    ("invalid-value.md", "atoms/error/invalid-value.md", "invalid-value", 10, "error", 3),
    ("Sync_Fails.md", "atoms/error/Sync_Fails.md", "invalid-id", 2, "error", 3),
    ("invalid-date.md", "atoms/error/invalid-date.md", "invalid-date", 6, "error", 3),
    ("invalid-date-order.md", "atoms/error/invalid-date-order.md", "invalid-date", 9, "error", 3),
    ("unknown-enum-type.md", "atoms/error/unknown-enum-type.md", "unknown-enum", 4, "error", 3),
    ("unknown-enum-status.md", "atoms/error/unknown-enum-status.md", "unknown-enum", 7, "error", 3),
    ("unknown-enum-generator.md", "atoms/error/unknown-enum-generator.md", "unknown-enum", 9, "error", 3),
    ("id-mismatch.md", "atoms/error/id-mismatch.md", "id-mismatch", 2, "error", 3),
    ("duplicate-id-a.md", "atoms/error/shared-id.md", "duplicate-id", 2, "error", 3),
    ("type-folder.md", "atoms/error/type-folder.md", "type-folder", 4, "error", 3),
    ("missing-section.md", "atoms/error/missing-section.md", "missing-section", 16, "error", 3),
    ("missing-section-draft.md", "atoms/error/missing-section-draft.md", "missing-section", 16, "warning", 0),
    ("faq-empty.md", "atoms/error/faq-empty.md", "faq-empty", 24, "error", 3),
    ("faq-no-answer.md", "atoms/error/faq-no-answer.md", "faq-no-answer", 29, "error", 3),
    ("config-parse.md", "atoms/config-template/config-parse.md", "config-parse", 17, "error", 3),
    ("config-parse-json.md", "atoms/config-template/config-parse-json.md", "config-parse", 17, "error", 3),
    ("config-schema.md", "atoms/config-template/config-schema.md", "config-schema", 18, "error", 3),
    ("config-schema-missing.md", "atoms/config-template/config-schema-missing.md", "config-schema", 9, "error", 3),
    ("config-no-block.md", "atoms/config-template/config-no-block.md", "config-no-block", 10, "error", 3),
    ("validated-unreviewed.md", "atoms/error/validated-unreviewed.md", "validated-unreviewed", 7, "error", 3),
    ("over-cap.md", "atoms/error/over-cap.md", "over-cap", 10, "error", 3),
    ("too-long.md", "atoms/error/too-long.md", "too-long", 10, "warning", 0),
    ("too-short.md", "atoms/error/too-short.md", "too-short", 10, "warning", 0),
    ("related-unresolved.md", "atoms/error/related-unresolved.md", "related-unresolved", 9, "error", 3),
    ("near-duplicate.md", "atoms/error/near-duplicate.md", "near-duplicate", 3, "warning", 0),
    ("quote-unverified.md", "atoms/error/quote-unverified.md", "quote-unverified", 14, "error", 3),
]


def make_workspace(tmp_path: Path, name: str, target: str) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(DATA / "_context", ws)
    dest = ws / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / name, dest)
    if name == "duplicate-id-a.md":
        (ws / "atoms/pitfall").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / "duplicate-id-b.md", ws / "atoms/pitfall/shared-id.md")
    return ws


def run_json(capsys: pytest.CaptureFixture, ws: Path, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--workspace", str(ws), "check", "--format", "json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_corpus_has_one_file_per_case() -> None:
    files = {p.name for p in DATA.glob("*.md")}
    named = {c[0] for c in CASES} | {"duplicate-id-b.md"}
    assert files == named
    assert len({c[2] for c in CASES}) >= 20  # distinct rules covered


@pytest.mark.parametrize(("name", "target", "rule", "line", "severity", "exit_code"), CASES, ids=[c[0] for c in CASES])
def test_broken_atom(tmp_path, capsys, name, target, rule, line, severity, exit_code) -> None:
    ws = make_workspace(tmp_path, name, target)
    code, report = run_json(capsys, ws, target)
    findings = report["findings"]
    assert all(f["path"] == target for f in findings), findings
    hits = [f for f in findings if f["rule"] == rule]
    assert hits, f"{rule} not reported: {findings}"
    assert hits[0]["line"] == line, hits
    assert hits[0]["severity"] == severity
    assert hits[0]["message"] and hits[0]["hint"]
    other_errors = {f["rule"] for f in findings if f["severity"] == "error"} - {rule}
    assert not other_errors, findings
    assert code == exit_code
    assert report["summary"]["errors"] == sum(f["severity"] == "error" for f in findings)
