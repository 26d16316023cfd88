"""Operations: read-only adapters to the system the knowledge is about, and deterministic triage.

Public entry points (the CLI, the service, the tools and the agent loop call these):

- ``catalog_for(workspace_root, index=None)``: the atoms to link errors to (a loaded index, or
  the workspace's ``atoms/``);
- ``scan_system(workspace_root, name, catalog, since=None, progress=None)``: triage of a
  system's logs (``kb ops scan``);
- ``triage_text`` / ``triage_files``: triage of a pasted log or files (``kb triage``);
- ``answer_offline(question, system, index, settings, workspace_root=None)``: the triage
  rendered as an answer, the path of ``kb ops ask`` and ``kb-ops`` without an LLM;
- ``check_manifests(workspace_root)``: problems of ``systems/*.yaml`` for ``kb check``;
- ``record_uncovered(state_dir, result, settings)``: the uncovered errors into the gap log (``kb gaps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.ops.linking import Catalog, workspace_atoms
from pipeline.ops.triage import Progress, Scanner, TriageResult, parse_since, triage_text

if TYPE_CHECKING:
    from pipeline.config import Settings

__all__ = [
    "Catalog",
    "TriageResult",
    "answer_offline",
    "catalog_for",
    "check_manifests",
    "gap_questions",
    "parse_since",
    "record_uncovered",
    "scan_system",
    "triage_files",
    "triage_text",
]


def catalog_for(workspace_root: Path | None, index: Any | None = None) -> Catalog:
    """The atoms errors are linked to: the loaded index when there is one, else ``atoms/``."""
    if index is not None:
        return Catalog.from_index(index)
    if workspace_root is None:
        return Catalog([])
    from pipeline.workspace import Workspace

    return Catalog(workspace_atoms(Workspace.at(workspace_root, discover=False)))


def triage_files(
    paths: list[Path], catalog: Catalog, *, since: Any = None, progress: Progress | None = None
) -> TriageResult:
    scanner = Scanner(since=since)
    for p in paths:
        scanner.scan_file(Path(p), str(p), progress)
    return scanner.result(catalog)


def scan_system(
    workspace_root: Path,
    name: str,
    catalog: Catalog,
    *,
    since: Any = None,
    progress: Progress | None = None,
    max_manifest_bytes: int = 262_144,
) -> TriageResult:
    """Triage every log file a system declares (files in glob order, sources in manifest order)."""
    import re

    from pipeline.errors import NotFoundError
    from pipeline.ops.manifest import load_system, log_files

    manifest = load_system(workspace_root, name, max_manifest_bytes)
    scanner = Scanner(since=since)
    found = 0
    for src in manifest.logs:
        scanner.pattern = re.compile(src.pattern) if src.pattern else None
        scanner.fmt = src.format
        for path in log_files(workspace_root, manifest, src):
            found += 1
            scanner.scan_file(path, _display(workspace_root, path), progress)
    if manifest.name == "kb":
        _add_check_findings(scanner, workspace_root)
    elif not found:
        raise NotFoundError(
            f"system {name!r}: no log file matches {[p for s in manifest.logs for p in s.paths]}",
            f"check the logs: paths in systems/{name}.yaml",
        )
    return scanner.result(catalog)


def _display(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def _add_check_findings(scanner: Scanner, root: Path) -> None:
    from pipeline.ops.selfsystem import check_findings

    lines = [f"{f.get('severity', 'error').upper()} {f.get('rule')}: {f.get('path')}: {f.get('message')}"
             for f in check_findings(root)]  # fmt: skip
    if lines:
        scanner.feed(lines, ".kb/state/check-report.json")


def answer_offline(
    question: str,
    system: str,
    index: Any | None,
    settings: Any,
    workspace_root: Path | None = None,
    *,
    since: str | None = None,
    result: TriageResult | None = None,
) -> dict[str, Any]:
    """The answer to an operator's question without an LLM: the system's triage, rendered.

    Returns ``{"answer", "uncertain", "citations", "drafts", "triage"}``: ``uncertain`` when an
    error group has no atom (or nothing was found), ``drafts`` when an answer rests on draft atoms
    (their citations are kept and the text says so). Citations are atoms with their sources
    (the ``/v1/ask`` shape) plus the log lines as ``{"log": "file:line", "time": ...}``.
    """
    from pipeline.ops.render import render_answer

    if result is None:
        catalog = catalog_for(workspace_root, index)
        root = Path(workspace_root) if workspace_root else Path.cwd()
        result = scan_system(root, system, catalog, since=parse_since(since) if since else None,
                             max_manifest_bytes=settings.ops.max_manifest_bytes)  # fmt: skip
    return render_answer(question, system, result, max_groups=settings.ops.max_groups)


def gap_questions(result: TriageResult) -> list[dict[str, Any]]:
    """The uncovered error groups as gap-log entries (``pipeline.index.gaps``): the next interview's questions.

    The text is the group's template (values masked), so the same error seen again with other ids,
    paths or times counts up one gap instead of adding another; ``detail`` says where it was first seen.
    """
    return [
        {
            "kind": "uncovered-error",
            "text": g.template[:300],
            "count": g.count,
            "detail": f"{g.file}:{g.line_number}" + (f" (first seen {g.first_seen})" if g.first_seen else ""),
        }
        for g in result.uncovered_errors
    ]


def record_uncovered(state_dir: Path, result: TriageResult, settings: Settings) -> int:
    """Record the errors triage found but no error atom covers in the gap log (``kb gaps`` lists them):
    the workspace's file, or the Postgres index's table when one is used (``index.url``).

    Returns how many were recorded. Texts are redacted by the gap log itself.
    """
    entries = gap_questions(result)
    if not entries:
        return 0
    from pipeline.index.gapstore import open_gap_log

    return open_gap_log(state_dir, settings).record(entries)


def check_manifests(workspace_root: Path) -> list[tuple[str, int, str, str]]:
    """(path, line, message, hint) for every ``systems/*.yaml`` that does not load."""
    from pipeline.errors import KbError
    from pipeline.ops.manifest import manifest_paths, read_manifest

    out = []
    for path in manifest_paths(Path(workspace_root)):
        try:
            read_manifest(path)
        except KbError as exc:
            rel = f"systems/{path.name}"
            out.append((rel, _line_of(path, exc.message), exc.message.replace(str(path), rel), exc.hint or ""))
    return out


def _line_of(path: Path, message: str) -> int:
    """The line of the first top-level key the message names (1 when none)."""
    import re

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 1
    m = re.search(r": ([a-z_]+)[.:]", message)
    if m:
        for i, line in enumerate(lines, 1):
            if re.match(rf"\s*-?\s*{m.group(1)}\s*:", line):
                return i
    return 1
