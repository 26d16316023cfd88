"""The deterministic change engine: one recipe applied to every matching file, as a plan.

``plan()`` reads every file the recipe's globs match, edits each selected document in memory
(round-trip YAML/JSON, see ``docs``), validates each edited document against its schema and
writes ``plans/<id>/``: ``plan.json`` (recipe; per file sha256 before/after and status changed /
unchanged / skipped(reason) / invalid(errors)), ``plan.patch`` (unified diff), ``summary.txt``,
``recipe.yaml`` (replayable with ``--recipe``) and ``after.json`` (the new contents, so applying
never re-runs the engine or an LLM). Nothing outside ``plans/`` is written here.

"Do no harm": a file the engine cannot edit safely (does not parse, uses YAML anchors, would be
reformatted by the round trip, an edit through a scalar, a mapping replaced by a scalar) is
skipped with the reason.
"""

from __future__ import annotations

import difflib
import glob as globlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.change import docs, paths
from pipeline.change import schemas as target_schemas
from pipeline.change.recipe import Recipe
from pipeline.errors import InputError, KbError, NotFoundError
from pipeline.workspace import Workspace, atomic_write_json, atomic_write_text, sha256_bytes, sha256_json

STATUSES = ("changed", "unchanged", "skipped", "invalid")


class PlanRefused(KbError):
    """A plan kb will not apply (an invalid result, a stale input): exit code 3, like any gate."""

    exit_code = 3


@dataclass
class FileResult:
    path: str
    display: str
    status: str
    reason: str | None = None
    errors: list[str] = field(default_factory=list)
    sha256_before: str | None = None
    sha256_after: str | None = None
    schema: str | None = None
    documents: int = 0
    selected: int = 0
    edited: int = 0
    diff: str = field(default="", repr=False)
    new_bytes: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("diff")
        d.pop("new_bytes")
        return d


@dataclass
class Plan:
    id: str
    folder: Path
    recipe: Recipe | None  # None for a plan of whole-file contents (kb setup apply)
    files: list[FileResult]
    llm: dict[str, Any] | None = None
    kind: str = "change"

    @property
    def summary(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for f in self.files:
            counts[f.status] += 1
        return counts

    @property
    def valid(self) -> bool:
        return self.summary["invalid"] == 0

    @property
    def changes(self) -> int:
        return self.summary["changed"]

    def summary_line(self) -> str:
        s = self.summary
        not_selected = sum(1 for f in self.files if f.status == "unchanged" and f.selected == 0)
        unchanged = f"{s['unchanged']} unchanged" + (f" ({not_selected} not selected)" if not_selected else "")
        return f"{s['changed']} to change, {unchanged}, {s['skipped']} skipped, {s['invalid']} invalid"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "valid": self.valid,
            "recipe": self.recipe.model_dump(mode="json") if self.recipe else None,
            "llm": self.llm,
            "summary": self.summary,
            "files": [f.to_json() for f in self.files],
        }


# ---------------------------------------------------------------------------------------------
# selecting files


def expand(patterns: list[str], base: Path) -> list[Path]:
    """Files matching the globs (relative to ``base``; ``**`` recurses), sorted, each once."""
    if not patterns:
        raise InputError("no files to change", "Name them with --files GLOB (relative to this folder).")
    out: dict[str, Path] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        for hit in sorted(globlib.glob(full, recursive=True)):
            p = Path(hit)
            if p.is_file():
                out.setdefault(str(p.resolve()), p.resolve())
    if not out:
        raise NotFoundError(
            f"no file matches {', '.join(patterns)} (from {base})",
            "Globs are relative to the current folder; quote them so the shell does not expand them.",
        )
    return sorted(out.values())


def display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base.resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# one file


@dataclass
class _Schemas:
    """The schema for each file: the one given with --schema, else the one registered for it."""

    workspace: Workspace
    given: tuple[str, Path] | None
    targets: dict[str, list[str]]

    def for_file(self, path: Path) -> tuple[str, Any] | None:
        if self.given is not None:
            return self.given[0], target_schemas.validator(self.given[1])
        name = target_schemas.registered_for(self.workspace, path, self.targets)
        if name is None:
            return None
        return name, target_schemas.validator(target_schemas.configs_dir(self.workspace) / f"{name}.json")


def edit_file(path: Path, shown: str, recipe: Recipe, schemas: _Schemas | None) -> FileResult:
    """Plan one file: read, select, edit, validate; never writes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the file: {exc.strerror}", "Check it exists and is readable.", path=shown
        ) from None
    res = FileResult(path=str(path), display=shown, status="unchanged", sha256_before=sha256_bytes(raw))
    res.sha256_after = res.sha256_before
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _skip(res, f"not UTF-8 (byte {exc.start})")
    try:
        loaded = docs.load(text, path.name)
    except docs.Unreadable as exc:
        return _skip(res, str(exc))
    res.documents = len(loaded.docs)
    selected = [i for i, d in enumerate(loaded.docs) if all(p.holds(d) for p in recipe.where)]
    res.selected = len(selected)
    if not selected:
        res.reason = "not selected: no document matches the where predicates" if recipe.where else None
        return res
    if loaded.anchors:
        return _skip(res, "uses YAML anchors/aliases: an edit could change every place that shares the node")
    make_map = docs.new_map if loaded.kind == "yaml" else dict
    make_list = docs.new_list if loaded.kind == "yaml" else list
    tests_failed: list[str] = []
    edited: list[int] = []
    for i in selected:
        doc = loaded.docs[i]
        try:
            failed = _run_ops(doc, recipe, make_map, make_list)
        except paths.Unsafe as exc:
            where = f"document {i + 1}: " if len(loaded.docs) > 1 else ""
            return _skip(res, f"{where}{exc}")
        if isinstance(failed, str) and failed:
            tests_failed.append(failed)
        elif failed is None:
            edited.append(i)
    res.edited = len(edited)
    if not edited:
        if tests_failed:
            return _skip(res, f"test failed: {tests_failed[0]}")
        return res
    new_text = loaded.dump(loaded.docs)
    if new_text == text:
        res.edited = 0
        return res
    if not _only_insertions(text, new_text):  # lines changed: were they only ours? dump the untouched file
        pristine = docs.load(text, path.name)
        again = pristine.dump(pristine.docs)
        if again != text:
            line = _first_difference(text, again)
            return _skip(
                res,
                f"a round trip would rewrite untouched lines (first at line {line}: indentation, "
                f"flow style or quoting ruamel.yaml cannot keep); edit it by hand",
            )
    found = schemas.for_file(path) if schemas is not None else None
    if found is not None:
        res.schema, validator = found
        for i in edited:
            msgs = target_schemas.errors(validator, docs.plain(loaded.docs[i]))
            prefix = f"document {i + 1}: " if len(loaded.docs) > 1 else ""
            res.errors += [prefix + m for m in msgs]
    new_bytes = new_text.encode("utf-8")
    res.status = "invalid" if res.errors else "changed"
    res.sha256_after = sha256_bytes(new_bytes)
    res.new_bytes = new_bytes
    res.diff = unified(text, new_text, shown)
    return res


def _run_ops(doc: Any, recipe: Recipe, make_map: Any, make_list: Any) -> str | None | bool:
    """Apply the ops to one document: None = edited, False = nothing changed, str = a failed test."""
    changed = False
    for op in recipe.ops:
        parts = paths.parse(op.path)
        if op.op == "test":
            found = paths.get(doc, parts)
            if found is paths.MISSING or not paths.same(found, op.value):
                shown = "missing" if found is paths.MISSING else json.dumps(docs.plain(found), default=str)
                return f"{op.path} is {shown}, not {json.dumps(op.value, default=str)}"
        elif op.op == "set":
            changed |= paths.set_value(doc, parts, op.value, make_map, docs.restyle)
        elif op.op == "add":
            changed |= paths.add_value(doc, parts, op.value, make_map)
        elif op.op == "remove":
            changed |= paths.remove_value(doc, parts)
        elif op.op == "append":
            changed |= paths.append_value(doc, parts, op.value, make_map, make_list)
    return None if changed else False


def _skip(res: FileResult, reason: str) -> FileResult:
    res.status, res.reason = "skipped", reason
    return res


def _only_insertions(old: str, new: str) -> bool:
    """Every line of ``old`` is still in ``new``, in order: the edit only added lines (the common
    case), so the round trip kept every untouched line and no second dump is needed."""
    lines = old.splitlines(keepends=True)
    i = 0
    for line in new.splitlines(keepends=True):
        if i < len(lines) and line == lines[i]:
            i += 1
    return i == len(lines)


def _first_difference(a: str, b: str) -> int:
    for n, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), 1):
        if x != y:
            return n
    return min(a.count("\n"), b.count("\n")) + 1


def unified(before: str, after: str, name: str, *, new_file: bool = False, deleted: bool = False) -> str:
    """A ``git apply``/``patch -p1`` compatible unified diff of one file."""
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    lines = list(
        difflib.unified_diff(a, b, "/dev/null" if new_file else f"a/{name}", "/dev/null" if deleted else f"b/{name}")
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# the whole plan


def make_plan(
    workspace: Workspace,
    recipe: Recipe,
    *,
    base: Path,
    schema: str | None = None,
    llm: dict[str, Any] | None = None,
    progress: Any = None,
) -> Plan:
    """Plan ``recipe`` over its files (globs relative to ``base``) and write ``plans/<id>/``."""
    files = expand(recipe.files, base)
    given = target_schemas.resolve(workspace, schema) if schema else None
    schemas = _Schemas(workspace, given, target_schemas.read_targets(workspace))
    items = progress(files, "planning") if progress else files
    results = [edit_file(p, display(p, base), recipe, schemas) for p in items]
    schema_hash = sha256_bytes(given[1].read_bytes()) if given else sha256_json(schemas.targets)
    plan_id = sha256_json(
        {
            "recipe": recipe.model_dump(mode="json"),
            "files": [(r.path, r.sha256_before, r.sha256_after, r.status) for r in results],
            "schema": schema_hash,
        }
    )[:12]
    plan = Plan(plan_id, workspace.plans_dir / plan_id, recipe, results, llm)
    write(plan)
    return plan


def plan_contents(
    workspace: Workspace, contents: list[tuple[Path, bytes]], *, kind: str, source: str, base: Path
) -> Plan:
    """A plan that writes whole files (new or replaced), e.g. a setup proposal into a folder."""
    results = []
    for path, new in contents:
        path = path.resolve()
        shown = display(path, base)
        old = path.read_bytes() if path.is_file() else None
        res = FileResult(
            path=str(path),
            display=shown,
            status="unchanged",
            documents=1,
            selected=1,
            sha256_before=sha256_bytes(old) if old is not None else None,
            sha256_after=sha256_bytes(new),
        )
        if old != new:
            res.status, res.edited, res.new_bytes = "changed", 1, new
            res.diff = unified(
                old.decode("utf-8", "replace") if old is not None else "",
                new.decode("utf-8"),
                shown,
                new_file=old is None,
            )
            res.reason = "new file" if old is None else "replaces the existing file"
        results.append(res)
    plan_id = sha256_json(
        {"kind": kind, "source": source, "files": [(r.path, r.sha256_before, r.sha256_after) for r in results]}
    )[:12]
    plan = Plan(plan_id, workspace.plans_dir / plan_id, None, results, {"source": source}, kind=kind)
    write(plan)
    return plan


def write(plan: Plan) -> None:
    """``plan.json``, ``plan.patch``, ``summary.txt``, ``recipe.yaml``, ``after.json`` in ``plan.folder``."""
    folder = plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    after = {str(i): f.new_bytes.decode("utf-8") for i, f in enumerate(plan.files) if f.new_bytes is not None}
    atomic_write_json(folder / "after.json", after)
    atomic_write_text(folder / "plan.patch", "".join(f.diff for f in plan.files))
    if plan.recipe is not None:
        atomic_write_text(folder / "recipe.yaml", recipe_yaml(plan.recipe))
    atomic_write_text(folder / "summary.txt", summary_text(plan))
    atomic_write_json(folder / "plan.json", plan.to_json())


def recipe_yaml(recipe: Recipe) -> str:
    import yaml

    head = "# Replay with: kb change plan --recipe recipe.yaml\n"
    return head + yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def summary_text(plan: Plan) -> str:
    lines = [f"plan {plan.id}: {plan.summary_line()}"]
    for f in plan.files:
        if f.status == "skipped":
            lines.append(f"  skipped {f.display}: {f.reason}")
        elif f.status == "invalid":
            lines.append(f"  invalid {f.display} (schema {f.schema}):")
            lines += [f"    {e}" for e in f.errors]
    return "\n".join(lines) + "\n"


def load_plan(workspace: Workspace, plan_id: str) -> dict[str, Any]:
    folder = workspace.plans_dir / plan_id
    path = folder / "plan.json"
    if not plan_id or "/" in plan_id or not path.is_file():
        known = (
            sorted(p.parent.name for p in workspace.plans_dir.glob("*/plan.json"))
            if workspace.plans_dir.is_dir()
            else []
        )
        raise NotFoundError(
            f"no plan '{plan_id}' in {workspace.relative(workspace.plans_dir)}/",
            ("plans: " + ", ".join(known[-10:])) if known else "Make one with `kb change plan`.",
        )
    return json.loads(path.read_text(encoding="utf-8"))
