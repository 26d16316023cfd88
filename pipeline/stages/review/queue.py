"""The review queue: what needs a reviewer, in the order to act on it, with why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import atoms
from pipeline.errors import InputError
from pipeline.findings import review_rank as rank
from pipeline.models import DocumentSource, InterviewSource
from pipeline.workspace import Workspace

#: Buckets of the queue, in order.
BUCKETS = ("errors", "findings", "proposal", "draft", "in-review")


@dataclass
class QueueItem:
    atom_id: str
    path: str  # workspace-relative
    title: str
    type: str
    status: str
    source: str  # the interview or document it came from
    created: str
    errors: int = 0
    warnings: int = 0
    proposal: str | None = None  # workspace-relative path of <id>.proposed.md
    needs: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def rank(self) -> tuple:
        return rank(
            self.errors, self.warnings, self.proposal is not None, self.status, self.source, self.created, self.atom_id
        )

    @property
    def bucket(self) -> str:
        return BUCKETS[self.rank[0]]

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "bucket": self.bucket}


def _source_of(meta: Any) -> str:
    for s in meta.sources:
        if isinstance(s, InterviewSource):
            return f"interview {s.interview}"
        if isinstance(s, DocumentSource):
            return f"document {s.document}"
    return "written by hand"


def _field(f: Any, key: str) -> Any:
    return f.get(key) if isinstance(f, dict) else getattr(f, key, None)


def queue(ws: Workspace, findings: Sequence[Any] = (), *, include_done: bool = False) -> list[QueueItem]:
    """Every atom that needs a reviewer (validated/archived ones without findings or proposals are done)."""
    by_path: dict[str, list[Any]] = {}
    for f in findings:
        by_path.setdefault(str(_field(f, "path")), []).append(f)
    out: list[QueueItem] = []
    for path in ws.atom_files():
        rel = ws.relative(path)
        proposal = path.with_name(path.stem + ".proposed.md")
        mine = by_path.get(rel, [])
        errors = [f for f in mine if _field(f, "severity") == "error"]
        warnings = [f for f in mine if _field(f, "severity") == "warning"]
        try:
            atom = atoms.read(path)
        except InputError as exc:
            item = QueueItem(
                path.stem, rel, path.stem, path.parent.name, "draft", "unreadable", "", max(1, len(errors))
            )
            item.reasons.append(f"does not parse: {exc.message}")
            out.append(item)
            continue
        meta = atom.meta
        item = QueueItem(
            meta.id,
            rel,
            meta.title,
            meta.type,
            meta.status,
            _source_of(meta),
            meta.created.isoformat(),
            len(errors),
            len(warnings),
            ws.relative(proposal) if proposal.is_file() else None,
            list(meta.needs),
        )
        if errors:
            item.reasons.append(f"{len(errors)} error(s): " + ", ".join(sorted({_field(f, "rule") for f in errors})))
        if warnings:
            item.reasons.append(
                f"{len(warnings)} warning(s): " + ", ".join(sorted({_field(f, "rule") for f in warnings}))
            )
        if item.proposal:
            item.reasons.append(f"kb proposes a new version: {item.proposal} (kb review show {meta.id})")
        if meta.status == "draft":
            age = (dt.date.today() - meta.created).days
            item.reasons.append(f"draft from {item.source}, {age} day(s) old")
        elif meta.status == "in-review":
            item.reasons.append("in review: validate it (kb review promote ID --to validated) or send it back")
        if meta.needs:
            item.reasons.append("needs: " + "; ".join(n.split(":", 1)[0] for n in meta.needs))
        done = meta.status in ("validated", "archived") and not errors and not warnings and not item.proposal
        if include_done or not done:
            out.append(item)
    return sorted(out, key=lambda i: i.rank)


def find(ws: Workspace, atom_id: str) -> Path:
    from pipeline.errors import NotFoundError

    for path in ws.atom_files():
        if path.stem == atom_id:
            return path
    raise NotFoundError(
        f"no atom with id '{atom_id}' under {ws.relative(ws.atoms_dir)}/",
        "List the queue with 'kb review' (ids are the file names without .md).",
    )
