"""Findings of ``kb check``: ``Finding``, ``CheckReport`` and the rule table.

A low module: check produces these, and the site, the CLI and the service read them without
importing check's code. Rule ids, severities and fixes are listed in ``RULES`` (and in the
README table), so editors, hooks and CI can rely on them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"

#: rule id -> (severity, what it means, how to fix). ``review`` = warning while ``draft``
#: (or ``archived``), error for ``in-review``/``validated``.
RULES: dict[str, tuple[str, str, str]] = {
    "not-utf8": (ERROR, "the file holds bytes that are not UTF-8", "re-save the file as UTF-8"),
    "no-front-matter": (
        ERROR,
        "the file does not start with a `---` YAML block",
        "add the front matter (see `kb new`)",
    ),
    "empty-front-matter": (
        ERROR,
        "the front matter is empty or not a mapping",
        "give the fields as `key: value` lines",
    ),
    "yaml-syntax": (
        ERROR,
        "the front matter is not valid YAML",
        "fix the syntax at the line shown (quote values with `: ` or `#`)",
    ),
    "duplicate-key": (ERROR, "a front-matter key appears twice (YAML keeps only the last)", "merge the two entries"),
    "missing-field": (
        ERROR,
        "a required field is absent (`id`, `title`, `type`, `created`; source fields)",
        "add the field",
    ),
    "unknown-field": (
        ERROR,
        "a field the atom format does not know (often a typo)",
        "rename it to the suggested field or remove it",
    ),
    "wrong-type": (
        ERROR,
        "a value of the wrong type (text for a list, text for a number, ...)",
        "write the value in the type the hint names",
    ),
    "invalid-value": (
        ERROR,
        "a value outside its allowed range (negative seconds, end before start, blank list item)",
        "correct the value",
    ),
    "invalid-id": (
        ERROR,
        "the id is not a lowercase slug (`a-z`, `0-9`, `-`)",
        "use the slug of the title (what `kb new` writes)",
    ),
    "invalid-date": (
        ERROR,
        "a date that does not exist (2026-02-30) or is not YYYY-MM-DD, or `updated` before `created`",
        "write a real date as YYYY-MM-DD",
    ),
    "unknown-enum": (ERROR, "`type`, `status` or `generator.kind` holds an unknown value", "use the suggested value"),
    "id-mismatch": (ERROR, "`id` differs from the file name", "rename the file to `<id>.md` or fix the id"),
    "duplicate-id": (
        ERROR,
        "two files carry the same id (in any folders)",
        "give one of them another id and file name",
    ),
    "type-folder": (
        ERROR,
        "`type` differs from the folder the file is in (`atoms/<type>/`)",
        "move the file or fix the type",
    ),
    "missing-section": (
        "review",
        "a `##` section the atom's type requires is absent",
        "add the section (see `kb new TYPE`)",
    ),
    "faq-empty": (
        "review",
        "the `## FAQ` section holds no `**Q:**`/`**A:**` pair",
        "add at least one question and answer",
    ),
    "faq-no-answer": (
        ERROR,
        "a `**Q:**` with no `**A:**` (or an empty one) after it",
        "write the answer below the question",
    ),
    "config-no-block": (
        "review",
        "a config-template atom without a fenced `yaml` or `json` block",
        "add the template as a fenced block",
    ),
    "config-parse": (
        ERROR,
        "a fenced `yaml`/`json` block of a config-template does not parse",
        "fix the syntax at the line shown",
    ),
    "config-schema": (
        ERROR,
        "a config block does not validate against `schemas/configs/<config_schema>.json`, or that schema is missing or broken",
        "fix the value at the line shown, or the schema",
    ),
    "validated-unreviewed": (
        ERROR,
        "`status: validated` with an empty `reviewed_by`",
        "name the reviewers, or keep the status `in-review`",
    ),
    "too-short": (
        WARNING,
        "the body has fewer than `check.min_words` words (400)",
        "add what a reader needs, or merge into a related atom",
    ),
    "too-long": (
        WARNING,
        "the body has more than `check.max_words` words (800)",
        "split it into atoms of one screen each",
    ),
    "over-cap": (ERROR, "the body has more than `check.hard_cap_words` words (1500)", "split it into several atoms"),
    "related-unresolved": (
        ERROR,
        "a `related` title matches no atom's title (or id)",
        "use one of the suggested titles",
    ),
    "near-duplicate": (
        WARNING,
        "another atom has nearly the same title and summary",
        "merge the two, or make their titles say how they differ",
    ),
    "quote-unverified": (
        ERROR,
        "an interview quote is not found at that speaker and time in `transcript.json`",
        "copy the words, speaker and times from the transcript",
    ),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    column: int | None
    severity: str
    rule: str
    message: str
    hint: str | None = None

    def sort_key(self) -> tuple:
        return (self.path, self.line or 0, self.column or 0, self.rule, self.message)


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    duplicates: bool = True

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    def summary(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_with_findings": len({f.path for f in self.findings}),
            "errors": self.errors,
            "warnings": self.warnings,
            "rules": dict(sorted(Counter(f.rule for f in self.findings).items())),
            "duplicates_checked": self.duplicates,
        }

    def to_json(self) -> dict[str, Any]:
        return {"findings": [asdict(f) for f in self.findings], "summary": self.summary()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckReport:
        summary = data.get("summary", {})
        return cls(
            findings=[Finding(**f) for f in data.get("findings", [])],
            files=summary.get("files", 0),
            duplicates=summary.get("duplicates_checked", True),
        )

    def github_lines(self) -> list[str]:
        """GitHub Actions workflow commands (annotations on the pull request)."""
        out = []
        for f in self.findings:
            props = [f"file={_gh_prop(f.path)}"]
            if f.line:
                props.append(f"line={f.line}")
            if f.column:
                props.append(f"col={f.column}")
            props.append(f"title={_gh_prop(f.rule)}")
            text = f.message + (f"\nHint: {f.hint}" if f.hint else "")
            out.append(f"::{f.severity} {','.join(props)}::{_gh_data(text)}")
        return out

    def __str__(self) -> str:
        return f"{self.files} atom(s): {self.errors} error(s), {self.warnings} warning(s)"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")
