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
from pathlib import Path
from typing import Any

from pipeline import atoms
from pipeline.config import Settings
from pipeline.errors import InputError, NotFoundError
from pipeline.findings import ERROR, RULES, WARNING, CheckReport, Finding
from pipeline.models import ATOM_TYPES, STATUSES
from pipeline.reporting import Reporter
from pipeline.stages.check.body import check_body
from pipeline.stages.check.context import AtomInfo, CheckContext
from pipeline.stages.check.duplicates import duplicate_ids, near_duplicates
from pipeline.stages.check.fields import check_fields
from pipeline.stages.check.quotes import check_quotes
from pipeline.stages.check.related import unresolved_related
from pipeline.textio import decode_utf8
from pipeline.workspace import Workspace, atomic_write_json, sha256_bytes, sha256_file, sha256_json

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
    ctx = CheckContext(settings, workspace, reporter)
    checked = _collect(workspace, paths)
    everyone = {str(p): p for p in workspace.atom_files()} if paths else {}
    for p in checked:
        everyone.pop(str(p), None)
    findings: list[Finding] = []
    infos: list[AtomInfo] = []
    for path in reporter.progress(checked, "checking atoms", total=len(checked)):
        info = AtomInfo(path=path, rel=_rel(workspace, path), checked=True)
        _check_file(ctx, path, info, findings)
        infos.append(info)
    for path in everyone.values():  # the rest of the workspace: for ids, titles and duplicates
        info = AtomInfo(path=path, rel=_rel(workspace, path), checked=False)
        _light(path, info)
        infos.append(info)
    findings += duplicate_ids(infos)
    findings += unresolved_related(ctx, infos)
    dup = duplicates and ctx.cs.duplicates
    if dup:
        findings += near_duplicates(infos, ctx.cs.duplicate_threshold)
    findings.sort(key=Finding.sort_key)
    return CheckReport(findings=findings, files=len(checked), duplicates=dup)


def run_all(settings: Settings, workspace: Workspace, reporter: Reporter, force: bool = False) -> CheckReport:
    """``kb run`` step: check every atom; skip (and say so) when nothing it reads has changed."""
    fresh = workspace.freshness("check")
    saved = workspace.check_report
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
            t = workspace.transcript_json(iid)
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


def _check_file(ctx: CheckContext, path: Path, info: AtomInfo, out: list[Finding]) -> None:
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
    check_body(ctx, raw, data, atype, review_sev, add)
    sources = data.get("sources")
    if ctx.cs.verify_quotes and isinstance(sources, list):
        check_quotes(ctx, raw, sources, add)


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _light(path: Path, info: AtomInfo) -> None:
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
