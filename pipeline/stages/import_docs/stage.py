"""``kb import-docs DIR``: cut an existing Markdown documentation tree into draft atoms.

Every document is parsed (``import_docs_tree``), cut into one-screen pieces, typed and rendered
(``import_docs_cut``); pieces get titles from their heading path (unique across the import), ids
from the titles, and ``sources`` naming every document section they hold. Nothing is written
until every document has been read, so bad input leaves the workspace untouched.

Re-importing is idempotent: the same docs give the same ids and byte-identical files. An atom a
person edited since the import (``atoms.is_human_edited``) is never touched; when the docs now
say something else, the new version is written beside it as ``<id>.proposed.md``. An atom a
person deleted is not made again (the ids of the last import are kept under ``.kb/state``).
Atoms whose source section vanished from the docs are reported, never deleted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import atoms
from pipeline.config import Settings
from pipeline.errors import InputError, KbError, NotFoundError
from pipeline.models import ATOM_TYPES, Atom, AtomMeta, DocumentSource, Generator
from pipeline.reporting import Reporter
from pipeline.stages.import_docs.cut import Limits, Piece, cut
from pipeline.stages.import_docs.tree import Doc, Node, read_doc
from pipeline.workspace import Workspace, atomic_write_json, atomic_write_text, sha256_text

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
PROMPT = "import-docs-v1"


@dataclass
class Change:
    action: str  # create | update | unchanged | kept | propose | vanished | deleted (by a person: not recreated)
    atom_id: str
    path: str  # workspace-relative
    type: str
    note: str = ""


@dataclass
class ImportReport:
    documents: int = 0
    skipped: list[str] = field(default_factory=list)  # non-Markdown files, relative to DIR
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def ids(self, action: str) -> list[str]:
        return [c.atom_id for c in self.changes if c.action == action]

    @property
    def by_type(self) -> dict[str, int]:
        counts = Counter(c.type for c in self.changes if c.action in ("create", "update", "unchanged", "kept"))
        return {t: counts[t] for t in ATOM_TYPES if counts[t]}

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(ch.action for ch in self.changes)
        return {
            "created": c["create"],
            "updated": c["update"],
            "unchanged": c["unchanged"],
            "kept-human-edits": c["kept"],
            "proposals": c["propose"],
            "vanished": c["vanished"],
            "deleted-by-person": c["deleted"],
        }

    def __str__(self) -> str:
        n = sum(self.by_type.values())
        types = ", ".join(f"{t} {k}" for t, k in self.by_type.items())
        c = self.counts
        verb = "would import" if self.dry_run else "imported"
        line = (
            f"{verb} {self.documents} document(s) into {n} atom(s) ({types}): {c['created']} created, "
            f"{c['updated']} updated, {c['unchanged']} unchanged, {c['kept-human-edits']} kept (human edits)"
        )
        if c["vanished"]:
            line += f", {c['vanished']} whose source vanished"
        if c["deleted-by-person"]:
            line += f", {c['deleted-by-person']} deleted by a person (not recreated)"
        return line


# ---------------------------------------------------------------------------------------------
# entry point


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    docs_dir: Path | str,
    tags: list[str] | tuple[str, ...] = (),
    dry_run: bool = False,
    today: dt.date | None = None,
) -> ImportReport:
    """Import the Markdown files under ``docs_dir`` as draft atoms of ``workspace``."""
    today = today or dt.date.today()
    report = ImportReport(dry_run=dry_run)
    files, report.skipped = _collect(Path(docs_dir))
    for rel in report.skipped:
        reporter.info(f"skipped {rel}: not a Markdown file")
    docs: list[Doc] = []
    for path, rel in reporter.progress(files, "reading documents", total=len(files)):
        docs.append(read_doc(path, rel, Path(docs_dir).resolve().name))
    report.documents = len(docs)

    limits = Limits(settings.check.min_words, settings.check.max_words, settings.check.hard_cap_words)
    pieces: list[Piece] = []
    for doc in docs:
        cut_pieces, notes = cut(doc, limits)
        if not cut_pieces:
            reporter.info(f"skipped {doc.rel}: no text under its headings")
        pieces += cut_pieces
        report.notes += notes
    for note in report.notes:
        reporter.warn(note)
    if not pieces:
        raise InputError(
            f"the Markdown files in '{docs_dir}' hold no text to import",
            "Point kb import-docs at a folder of documentation pages with headings and text.",
        )
    _assign_titles(pieces)
    extra_tags = [_tag(t) for t in tags if _tag(t)]
    existing = _existing(workspace)
    plans = _plan(workspace, pieces, existing, extra_tags, today)
    before = _previous(workspace, Path(docs_dir))
    deleted = {p.atom_id for p in plans if p.atom_id in before and p.atom_id not in existing}
    _resolve_related([p for p in plans if p.atom_id not in deleted])
    for plan in reporter.progress(plans, "writing atoms", total=len(plans)):
        if plan.atom_id in deleted:
            # made by an earlier import and deleted by a person since: that was a decision
            path = workspace.relative(workspace.atom_path(plan.meta.type, plan.atom_id))
            report.changes.append(
                Change("deleted", plan.atom_id, path, plan.meta.type, "deleted since the last import")
            )
            continue
        report.changes += _apply(workspace, plan, existing, today, dry_run)
    report.changes += _vanished(workspace, Path(docs_dir), plans, existing, before, dry_run)
    return report


# ---------------------------------------------------------------------------------------------
# input


def _collect(folder: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    if not folder.exists():
        raise NotFoundError(
            f"the docs folder '{folder}' does not exist",
            "Pass the folder holding the Markdown documentation, e.g. kb import-docs docs/",
        )
    if not folder.is_dir():
        raise InputError(
            f"'{folder}' is a file, not a folder",
            "Pass the folder holding the Markdown documentation (its sub-folders are imported too).",
        )
    files: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in rel.split("/")) or not path.is_file():
            continue
        if path.suffix.lower() in MARKDOWN_SUFFIXES:
            files.append((path, rel))
        else:
            skipped.append(rel)
    if not files:
        raise InputError(
            f"no Markdown files (*.md, *.markdown) in '{folder}'",
            "Point kb import-docs at a folder of Markdown documentation.",
        )
    return files, skipped


def _tag(text: str) -> str:
    return atoms.slugify(str(text), max_len=40) if str(text).strip() else ""


def _path_tags(rel: str) -> list[str]:
    parts = rel.split("/")
    stem = Path(parts[-1]).stem
    names = parts[:-1] + ([] if stem.lower() in ("index", "readme", "_index") else [stem])
    return [t for t in (_tag(n) for n in names) if t and t != "atom"]


# ---------------------------------------------------------------------------------------------
# titles

_GENERIC = {
    "overview",
    "introduction",
    "intro",
    "example",
    "examples",
    "options",
    "usage",
    "solution",
    "solutions",
    "symptom",
    "symptoms",
    "notes",
    "note",
    "summary",
    "configuration",
    "settings",
    "installation",
    "setup",
    "prerequisites",
    "troubleshooting",
    "faq",
    "commands",
    "errors",
    "background",
    "details",
    "description",
    "reference",
    "limitations",
    "known issues",
    "workaround",
    "how to get it",
    "more information",
    "see also",
    "getting started",
    "requirements",
    "steps",
    "options inherited from parent commands",
    "synopsis",
    "global flags",
    "declarative",
    "cli",
    "ui",
}


def _is_generic(label: str, root: bool = False) -> bool:
    """A heading too vague for a title on its own ('Examples'; any one word below a page title)."""
    key = " ".join(label.lower().rstrip(":").split())
    return key in _GENERIC or (not root and len(key.split()) <= 1)


def _label(doc: Doc, node: Node) -> str:
    """A node's title: its heading, with its nearest specific ancestor when the heading alone is vague."""
    label = node.label or doc.label
    if not _is_generic(label, node is doc.root):
        return label
    parent = node.parent
    while parent is not None and _is_generic(parent.label or doc.label, parent is doc.root):
        parent = parent.parent
    context = (parent.label if parent is not None and parent.label else doc.label) if node is not doc.root else ""
    if not context or context == label:
        folder = doc.rel.split("/")[-2] if "/" in doc.rel else ""
        context = folder.replace("-", " ").replace("_", " ").capitalize() if folder else ""
    return f"{context}: {label}" if context and context.lower() != label.lower() else label


def _names(labels: list[str]) -> str:
    if len(labels) == 1:
        return labels[0]
    joined = ", ".join(labels[:-1]) + " and " + labels[-1]
    if len(joined) <= 90:
        return joined
    return f"{labels[0]} and {len(labels) - 1} more"


def _title(piece: Piece) -> str:
    doc = piece.doc
    units = piece.units
    if len(units) == 1:
        unit = units[0]
        base = _label(doc, unit.node)
        if unit.part is not None:
            return f"{base} (part {unit.part})"
        return base
    parent = piece.parent
    base = _label(doc, parent) if parent is not None else doc.label
    names = [u.node.label for u in units if u.whole]
    return f"{base}: {_names(names)}" if names else base


def _assign_titles(pieces: list[Piece]) -> None:
    """Titles from heading paths, unique across the import (deterministic in document order)."""
    for piece in pieces:
        piece.title = " ".join(_title(piece).split())
    for widen in (_with_doc, _with_path):
        groups: dict[str, list[Piece]] = {}
        for piece in pieces:
            groups.setdefault(piece.title.casefold(), []).append(piece)
        for group in groups.values():
            if len(group) > 1:
                for piece in group:
                    piece.title = widen(piece)
    seen: dict[str, int] = {}
    for piece in pieces:
        key = piece.title.casefold()
        if key in seen:
            seen[key] += 1
            piece.title = f"{piece.title} ({seen[key]})"
        else:
            seen[key] = 1


def _with_doc(piece: Piece) -> str:
    label = piece.doc.label
    return piece.title if piece.title.lower().startswith(label.lower()) else f"{label}: {piece.title}"


def _with_path(piece: Piece) -> str:
    return f"{piece.title} ({piece.doc.rel})"


# ---------------------------------------------------------------------------------------------
# existing atoms


@dataclass
class Existing:
    path: Path
    atom: Atom | None  # None: the file does not parse
    text: str


def _existing(workspace: Workspace) -> dict[str, Existing]:
    out: dict[str, Existing] = {}
    for path in workspace.atom_files():
        try:
            text = atoms.read_bytes(path)
            atom = atoms.parse(text, path)
        except KbError:
            out.setdefault(path.stem, Existing(path, None, ""))
            continue
        out.setdefault(atom.meta.id, Existing(path, atom, text))
    return out


def _documents(atom: Atom) -> set[str]:
    return {s.document for s in atom.meta.sources if isinstance(s, DocumentSource)}


@dataclass
class Plan:
    piece: Piece
    atom_id: str
    meta: AtomMeta  # without dates/version/hash; filled in by _apply
    final_title: str  # the title the workspace will hold (a kept human edit keeps its own)


def _plan(
    workspace: Workspace, pieces: list[Piece], existing: dict[str, Existing], tags: list[str], today: dt.date
) -> list[Plan]:
    used: set[str] = set()
    plans: list[Plan] = []
    for piece in pieces:
        base = atoms.slugify(piece.title)
        n, atom_id = 1, base
        while True:
            ex = existing.get(atom_id)
            foreign = ex is not None and ex.atom is not None and piece.doc.rel not in _documents(ex.atom)
            if atom_id not in used and not foreign:
                break
            n += 1
            atom_id = f"{base}-{n}"
        used.add(atom_id)
        doc_tags = _path_tags(piece.doc.rel)
        meta = AtomMeta(
            id=atom_id,
            title=piece.title,
            type=piece.type,  # type: ignore[arg-type]
            summary=piece.summary,
            created=today,
            updated=today,
            status="draft",
            tags=list(dict.fromkeys(doc_tags + tags)),
            sources=piece.sources,
            generator=Generator(kind="import", prompt=PROMPT),
        )
        ex = existing.get(atom_id)
        final = piece.title
        if ex is not None and ex.atom is not None and atoms.is_human_edited(ex.atom):
            final = ex.atom.meta.title
        plans.append(Plan(piece, atom_id, meta, final))
    return plans


def _resolve_related(plans: list[Plan]) -> None:
    """``related``: the neighbouring atoms cut from the same document (titles that will exist)."""
    by_doc: dict[str, list[Plan]] = {}
    for plan in plans:
        by_doc.setdefault(plan.piece.doc.rel, []).append(plan)
    for group in by_doc.values():
        for i, plan in enumerate(group):
            near = [group[j].final_title for j in (i - 1, i + 1) if 0 <= j < len(group)]
            related = [t for t in dict.fromkeys(near) if t != plan.meta.title]
            plan.meta = plan.meta.model_copy(update={"related": related})


# ---------------------------------------------------------------------------------------------
# writing


def _apply(
    workspace: Workspace, plan: Plan, existing: dict[str, Existing], today: dt.date, dry_run: bool
) -> list[Change]:
    meta, body = plan.meta, plan.piece.body
    path = workspace.atom_path(meta.type, plan.atom_id)
    rel = workspace.relative(path)
    ex = existing.get(plan.atom_id)
    if ex is None:
        if not dry_run:
            atoms.write(path, atoms.stamp(meta, body), body)
        return [Change("create", plan.atom_id, rel, meta.type)]
    if ex.atom is None:
        return _keep(workspace, plan, ex, None, today, dry_run, "the file does not parse (run 'kb check' on it)")
    old = ex.atom.meta
    same_dates = meta.model_copy(update={"created": old.created, "updated": old.updated, "version": old.version})
    if atoms.is_human_edited(ex.atom):
        return _keep(workspace, plan, ex, same_dates, today, dry_run, "edited by a person since the import")
    if (
        atoms.fingerprint(same_dates, body) == (old.generator.content_hash if old.generator else None)
        and ex.path == path
    ):
        return [Change("unchanged", plan.atom_id, rel, meta.type)]
    updated = same_dates.model_copy(update={"updated": max(today, old.created), "version": old.version + 1})
    note = ""
    if not dry_run:
        atoms.write(path, atoms.stamp(updated, body), body)
        if ex.path != path:
            ex.path.unlink()
    if ex.path != path:
        note = f"type changed: moved from {workspace.relative(ex.path)}"
    return [Change("update", plan.atom_id, rel, meta.type, note)]


def _keep(
    workspace: Workspace, plan: Plan, ex: Existing, meta: AtomMeta | None, today: dt.date, dry_run: bool, why: str
) -> list[Change]:
    """A person owns this atom: leave it; propose the import's version beside it when it differs."""
    out = [
        Change("kept", plan.atom_id, workspace.relative(ex.path), ex.atom.meta.type if ex.atom else plan.meta.type, why)
    ]
    body = plan.piece.body
    if meta is None:
        meta = plan.meta
    elif ex.atom is not None and ex.atom.meta.generator is not None:
        if atoms.fingerprint(meta, body) == ex.atom.meta.generator.content_hash:
            return out  # the docs say what they said at the last import: nothing to propose
    proposal = ex.path.with_name(f"{plan.atom_id}.proposed.md")
    text = atoms.render(atoms.stamp(meta, body), body)
    current = proposal.read_text(encoding="utf-8") if proposal.is_file() else None
    if current != text:
        if not dry_run:
            atomic_write_text(proposal, text)
        out.append(Change("propose", plan.atom_id, workspace.relative(proposal), plan.meta.type))
    return out


# ---------------------------------------------------------------------------------------------
# vanished sections


def _state_file(workspace: Workspace, folder: Path) -> Path:
    key = sha256_text(str(folder.resolve()))[:12]
    return workspace.stage_state_dir("import-docs") / f"{atoms.slugify(folder.resolve().name)}-{key}.json"


def _previous(workspace: Workspace, folder: Path) -> set[str]:
    """Ids the last import of this folder made (from its state file under .kb/)."""
    state = _state_file(workspace, folder)
    if not state.is_file():
        return set()
    try:
        return set(json.loads(state.read_text(encoding="utf-8")).get("atoms", []))
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def _claimed_elsewhere(state: Path) -> set[str]:
    """Ids that other imported folders' state files record (never this folder's to report)."""
    ids: set[str] = set()
    for other in state.parent.glob("*.json") if state.parent.is_dir() else []:
        if other == state:
            continue
        try:
            ids.update(json.loads(other.read_text(encoding="utf-8")).get("atoms", []))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return ids


def _vanished(
    workspace: Workspace,
    folder: Path,
    plans: list[Plan],
    existing: dict[str, Existing],
    before: set[str],
    dry_run: bool,
) -> list[Change]:
    """Atoms an earlier import of this folder made whose sections are gone: reported, kept."""
    state = _state_file(workspace, folder)
    produced = {p.atom_id for p in plans}
    documents = {p.piece.doc.rel for p in plans}
    out: list[Change] = []
    still: list[str] = []
    others = _claimed_elsewhere(state)
    for atom_id, ex in sorted(existing.items()):
        if atom_id in produced or ex.atom is None:
            continue
        # The state file says exactly what this folder made; guess from the document paths only
        # without one (a fresh clone), or another doc tree's atoms would be claimed.
        ours = atom_id in before or (
            not state.is_file()
            and atom_id not in others
            and ex.atom.meta.generator is not None
            and ex.atom.meta.generator.kind == "import"
            and bool(_documents(ex.atom) & documents)
        )
        if ours and ex.path.is_file():
            still.append(atom_id)
            gone = ", ".join(sorted(_documents(ex.atom))) or "?"
            out.append(
                Change(
                    "vanished",
                    atom_id,
                    workspace.relative(ex.path),
                    ex.atom.meta.type,
                    f"its section of {gone} is no longer in the docs; archive or delete it by hand",
                )
            )
    if not dry_run:
        atomic_write_json(state, {"folder": str(folder.resolve()), "atoms": sorted(produced | set(still))})
    return out
