"""``kb check``: every problem in the atoms, with file, line, rule and the fix.

One pass per file (decode, split, YAML, pydantic, body), then the rules that need every atom
(duplicate ids, ``related`` titles, near-duplicates). The stage returns findings; the CLI
prints them (human, JSON or GitHub annotations). Rule ids, severities and fixes are listed in
``RULES`` (and in the README table), so editors, hooks and CI can rely on them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process, utils

from pipeline import atoms
from pipeline.config import Settings
from pipeline.errors import InputError, NotFoundError
from pipeline.models import ATOM_TYPES, STATUSES, TYPE_SECTIONS
from pipeline.reporting import Reporter
from pipeline.stages.check_body import norm_heading, scan
from pipeline.stages.check_config import check_configs
from pipeline.stages.check_fields import check_fields
from pipeline.stages.check_quotes import check_quotes
from pipeline.textio import decode_utf8
from pipeline.workspace import Workspace, atomic_write_json, sha256_bytes, sha256_file, sha256_json

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


# ---------------------------------------------------------------------------------------------
# per-file facts collected for the cross-file rules


@dataclass
class _Info:
    path: Path
    rel: str
    checked: bool
    id: str | None = None
    id_line: int | None = None
    title: str | None = None
    title_line: int | None = None
    summary: str = ""
    related: list[tuple[str, int]] = field(default_factory=list)


class _Ctx:
    """What one run shares across files: settings, workspace, caches of schemas and transcripts."""

    def __init__(self, settings: Settings, workspace: Workspace, reporter: Reporter):
        self.settings = settings
        self.cs = settings.check
        self.workspace = workspace
        self.reporter = reporter
        self.validators: dict[str, Any] = {}
        self.transcripts: dict[str, Any] = {}
        self.verify_quote: Any = None
        self.grounding_loaded = False


# ---------------------------------------------------------------------------------------------
# entry points


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    paths: list[Path] | None = None,
    duplicates: bool = True,
) -> CheckReport:
    """Check ``paths`` (files or folders; default every atom of the workspace)."""
    ctx = _Ctx(settings, workspace, reporter)
    checked = _collect(workspace, paths)
    everyone = {str(p): p for p in workspace.atom_files()} if paths else {}
    for p in checked:
        everyone.pop(str(p), None)
    findings: list[Finding] = []
    infos: list[_Info] = []
    for path in reporter.progress(checked, "checking atoms", total=len(checked)):
        info = _Info(path=path, rel=_rel(workspace, path), checked=True)
        _check_file(ctx, path, info, findings)
        infos.append(info)
    for path in everyone.values():  # the rest of the workspace: for ids, titles and duplicates
        info = _Info(path=path, rel=_rel(workspace, path), checked=False)
        _light(path, info)
        infos.append(info)
    findings += _duplicate_ids(infos)
    findings += _related(ctx, infos)
    dup = duplicates and ctx.cs.duplicates
    if dup:
        from pipeline.stages.check_dupes import near_duplicates

        findings += near_duplicates(infos, ctx.cs.duplicate_threshold)
    findings.sort(key=Finding.sort_key)
    return CheckReport(findings=findings, files=len(checked), duplicates=dup)


def run_all(settings: Settings, workspace: Workspace, reporter: Reporter, force: bool = False) -> CheckReport:
    """``kb run`` step: check every atom; skip (and say so) when nothing it reads has changed."""
    fresh = workspace.freshness("check")
    saved = workspace.state_dir / "state" / "check-report.json"
    inputs = _inputs(settings, workspace)
    if not force and fresh.is_fresh("all", inputs) and saved.is_file():
        try:
            report = CheckReport.from_json(json.loads(saved.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            report = None
        if report is not None:
            reporter.skip(f"check: atoms unchanged since the last check ({report})")
            _say_errors(report, reporter)
            return report
    report = run(settings, workspace, reporter)
    _say_errors(report, reporter)
    atomic_write_json(saved, report.to_json())
    fresh.record("all", inputs)
    return report


def _say_errors(report: CheckReport, reporter: Reporter) -> None:
    for f in report.findings:
        if f.severity == ERROR:
            reporter.emit("error", f"{f.path}:{f.line or 1}: {f.rule}: {f.message}")  # kb run then exits 3


def _inputs(settings: Settings, workspace: Workspace) -> dict[str, Any]:
    files = {workspace.relative(p): sha256_bytes(p.read_bytes()) for p in workspace.atom_files()}
    extra: dict[str, str] = {}
    configs = workspace.schemas_dir / "configs"
    if configs.is_dir():
        extra.update({workspace.relative(p): sha256_file(p) for p in sorted(configs.glob("*.json"))})
    if settings.check.verify_quotes:
        for iid in workspace.interview_ids():
            t = workspace.interview_dir(iid) / "transcript.json"
            if t.is_file():
                extra[workspace.relative(t)] = sha256_file(t)
    return {"atoms": sha256_json(files), "extra": extra, "settings": settings.check.model_dump(mode="json")}


def _rel(workspace: Workspace, path: Path) -> str:
    try:
        return str(path.relative_to(workspace.root))
    except ValueError:
        return workspace.relative(path)


def _collect(workspace: Workspace, paths: list[Path] | None) -> list[Path]:
    """Absolute paths of the atom files to check, in the workspace's own spelling where possible."""
    if not paths:
        return workspace.atom_files()
    out: dict[Path, Path] = {}
    for given in paths:
        p = Path(given)
        if not p.is_absolute() and not p.exists() and (workspace.root / p).exists():
            p = workspace.root / p
        p = _in_root(workspace, p)
        if p.is_dir():
            for f in sorted(p.rglob("*.md")):
                if not f.name.endswith(".proposed.md"):
                    out.setdefault(f.resolve(), f)
        elif p.is_file():
            out.setdefault(p.resolve(), p)
        else:
            raise NotFoundError(
                f"'{given}' does not exist.",
                "Pass atom files or folders (default: every atom under atoms/).",
            )
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# one file


def _in_root(workspace: Workspace, path: Path) -> Path:
    """``path`` made absolute, spelled under the (resolved) workspace root when it lies inside it."""
    resolved = path.resolve()
    try:
        return workspace.root / resolved.relative_to(workspace.root)
    except ValueError:
        return path.absolute()


MAX_ALIASES = 20
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])\*[^\s\[\]{},]+")


def _check_file(ctx: _Ctx, path: Path, info: _Info, out: list[Finding]) -> None:
    rel = info.rel

    def add(
        rule: str,
        line: int | None,
        message: str,
        hint: str | None = None,
        *,
        column: int | None = None,
        severity: str | None = None,
    ) -> None:
        sev = severity or RULES[rule][0]
        out.append(Finding(rel, line, column, sev, rule, message, hint))

    try:
        data_bytes = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}", "Check its permissions.", path=rel) from None
    try:
        text = decode_utf8(data_bytes, rel, "Re-save the file as UTF-8 (most editors: 'Save with encoding').")
    except InputError as exc:
        add("not-utf8", exc.line, exc.message.split(": ", 1)[-1], exc.hint, column=exc.column)
        return
    raw = atoms.split(text)
    if raw.front_matter is None:
        add(
            "no-front-matter",
            1,
            "the file has no YAML front matter",
            "Start the file with '---', the atom's fields, then '---' (see 'kb new').",
        )
        return
    aliases = _ALIAS.findall(raw.front_matter) if "*" in raw.front_matter else []
    if len(aliases) > MAX_ALIASES:  # nested aliases expand exponentially ("billion laughs")
        add(
            "yaml-syntax",
            raw.fm_line,
            f"the front matter uses {len(aliases)} YAML aliases (at most {MAX_ALIASES})",
            "Write the values out instead of repeating them with &anchors and *aliases.",
        )
        return
    try:
        atoms.load_yaml(raw)
    except InputError as exc:
        add(
            "yaml-syntax",
            exc.line,
            exc.message.replace("front matter is not valid YAML: ", "invalid YAML: "),
            exc.hint,
            column=exc.column,
        )
        return
    for key, line in raw.duplicate_keys:
        add(
            "duplicate-key",
            line,
            f"key '{key}' appears more than once; YAML keeps only the last one",
            "Merge the two entries into one.",
        )
    data = raw.data
    if not isinstance(data, dict) or not data:
        add(
            "empty-front-matter",
            raw.fm_line - 1,
            "the front matter is empty or not a mapping of fields",
            "Give the atom's fields as 'key: value' lines (see 'kb new').",
        )
        return
    check_fields(raw, data, add)

    atom_id = data.get("id") if isinstance(data.get("id"), str) else None
    title = data.get("title") if isinstance(data.get("title"), str) else None
    atype = data.get("type") if data.get("type") in ATOM_TYPES else None
    status = data.get("status", "draft")
    status = status if status in STATUSES else "draft"
    info.id, info.id_line = atom_id, raw.lines.get(("id",))
    info.title, info.title_line = title, raw.lines.get(("title",))
    info.summary = data.get("summary") if isinstance(data.get("summary"), str) else ""
    rel_list = data.get("related")
    if isinstance(rel_list, list):
        info.related = [
            (t, raw.lines.get(("related", i), raw.fm_line))
            for i, t in enumerate(rel_list)
            if isinstance(t, str) and t.strip()
        ]

    if atom_id is not None and atom_id != path.stem:
        add(
            "id-mismatch",
            raw.lines.get(("id",)),
            f"id '{atom_id}' differs from the file name '{path.name}'",
            f"Rename the file to '{atom_id}.md', or set 'id: {path.stem}'.",
        )
    folder = path.parent.name
    in_atoms = str(path).startswith(str(ctx.workspace.atoms_dir) + os.sep)
    if atype is not None and (folder in ATOM_TYPES or in_atoms) and folder != atype:
        add(
            "type-folder",
            raw.lines.get(("type",)),
            f"type '{atype}' but the file is in folder '{folder}/'",
            f"Move the file to atoms/{atype}/, or set the type to match its folder.",
        )
    created, updated = _date(data.get("created")), _date(data.get("updated"))
    if created and updated and updated < created:
        add(
            "invalid-date",
            raw.lines.get(("updated",)),
            f"updated ({updated}) is before created ({created})",
            "Fix one of the two dates.",
        )
    if status == "validated" and not data.get("reviewed_by"):
        add(
            "validated-unreviewed",
            raw.lines.get(("status",)),
            "status is 'validated' but reviewed_by is empty",
            "Add the reviewers to reviewed_by (e.g. reviewed_by: [Jane Doe]), or keep status 'in-review'.",
        )

    review_sev = WARNING if status in ("draft", "archived") else ERROR
    _body(ctx, raw, data, atype, review_sev, add)
    sources = data.get("sources")
    if ctx.cs.verify_quotes and isinstance(sources, list):
        check_quotes(ctx, raw, sources, add)


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _light(path: Path, info: _Info) -> None:
    """Id, title and related of an atom outside the checked set (no findings reported for it)."""
    try:
        raw = atoms.split(path.read_bytes().decode("utf-8"))
        if raw.front_matter is None or len(_ALIAS.findall(raw.front_matter)) > MAX_ALIASES:
            return
        atoms.load_yaml(raw)
    except (OSError, UnicodeDecodeError, InputError):
        return
    data = raw.data
    if not isinstance(data, dict):
        return
    info.id = data.get("id") if isinstance(data.get("id"), str) else None
    info.id_line = raw.lines.get(("id",))
    info.title = data.get("title") if isinstance(data.get("title"), str) else None
    info.summary = data.get("summary") if isinstance(data.get("summary"), str) else ""


# ---------------------------------------------------------------------------------------------
# the body: sections, FAQ, config blocks, length


def _body(ctx: _Ctx, raw: atoms.RawAtom, data: dict, atype: str | None, review_sev: str, add: Any) -> None:
    sections, faq, code = scan(raw.body, raw.body_line)
    last_line = raw.body_line + raw.body.count("\n")
    if raw.body.endswith("\n"):
        last_line -= 1
    if atype is not None:
        have: dict[str, int] = {}
        for s in sections:
            if s.level == 2:
                have.setdefault(norm_heading(s.text), s.line)
        required = TYPE_SECTIONS[atype]
        for i, heading in enumerate(required):
            if norm_heading(heading) in have:
                continue
            after = next((have[norm_heading(h)] for h in required[i + 1 :] if norm_heading(h) in have), None)
            add(
                "missing-section",
                after or max(last_line, raw.body_line),
                f"missing section '## {heading}' (required for type {atype})",
                f"Add '## {heading}' {'before this line' if after else 'at the end'}; "
                f"a {atype} has: {', '.join(required)}.",
                severity=review_sev,
            )
        if "faq" in have and not faq:
            add(
                "faq-empty",
                have["faq"],
                "the FAQ section has no question and answer",
                "Add pairs as '**Q:** question?' then '**A:** answer.'",
                severity=review_sev,
            )
    for pair in faq:
        if not pair.answer.strip():
            add(
                "faq-no-answer",
                pair.line,
                f"question without an answer: '{_short(pair.question)}'",
                "Write '**A:** ...' on the line after the question.",
            )
    if atype == "config-template":
        check_configs(ctx, raw, data, code, review_sev, add)
    words = atoms.word_count(raw.body)
    cs = ctx.cs
    if words > cs.hard_cap_words:
        add(
            "over-cap",
            raw.body_line,
            f"the body has {words} words, above the hard cap of {cs.hard_cap_words}",
            "Split it into atoms of one screen each (400-800 words).",
        )
    elif words > cs.max_words:
        add(
            "too-long",
            raw.body_line,
            f"the body has {words} words, above {cs.max_words}",
            "Keep one atom to one screen: split it, or move detail into a related atom.",
        )
    elif words < cs.min_words:
        add(
            "too-short",
            raw.body_line,
            f"the body has {words} word{'' if words == 1 else 's'}, below {cs.min_words}",
            "Add the context, causes and steps a reader needs, or merge it into a related atom.",
        )


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------
# rules across files


def _duplicate_ids(infos: list[_Info]) -> list[Finding]:
    by_id: dict[str, list[_Info]] = defaultdict(list)
    for info in infos:
        if info.id:
            by_id[info.id].append(info)
    out = []
    for atom_id, group in by_id.items():
        if len(group) < 2:
            continue
        for info in group:
            if not info.checked:
                continue
            others = ", ".join(o.rel for o in group if o is not info)
            out.append(
                Finding(
                    info.rel,
                    info.id_line,
                    None,
                    ERROR,
                    "duplicate-id",
                    f"id '{atom_id}' is also used by {others}",
                    "Give one of the atoms another id (and rename its file to match).",
                )
            )
    return out


def _title_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _related(ctx: _Ctx, infos: list[_Info]) -> list[Finding]:
    titles: dict[str, str] = {}
    ids: set[str] = set()
    for info in infos:
        if info.title:
            titles.setdefault(_title_key(info.title), info.title)
        if info.id:
            ids.add(info.id)
    choices = list(titles.values())
    out = []
    for info in infos:
        if not info.checked:
            continue
        for title, line in info.related:
            if _title_key(title) in titles or title.strip() in ids:
                continue
            best = process.extract(
                title,
                choices,
                scorer=fuzz.WRatio,
                processor=utils.default_process,
                limit=3,
                score_cutoff=ctx.cs.related_threshold,
            )
            names = [b[0] for b in best if b[0] != info.title]
            hint = (
                ("Did you mean " + " or ".join(f"'{n}'" for n in names) + "?")
                if names
                else "No atom has a similar title; write the atom first, or remove the entry."
            )
            out.append(
                Finding(
                    info.rel, line, None, ERROR, "related-unresolved", f"related title '{title}' matches no atom", hint
                )
            )
    return out
