"""Acting on the queue: show, accept, reject, promote. Every write is atomic; ``commit`` records it in git."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import atoms
from pipeline.errors import InputError, KbError, NotFoundError
from pipeline.models import Atom
from pipeline.stages.review.queue import _field, find
from pipeline.workspace import Workspace, atomic_write_json, atomic_write_text, git_commit, git_identity


@dataclass
class Done:
    atom_id: str
    action: str
    path: str
    message: str
    commit: str | None = None


def _proposal(path: Path) -> Path:
    return path.with_name(path.stem + ".proposed.md")


def _read_proposal(ws: Workspace, path: Path) -> tuple[Path, Atom]:
    proposal = _proposal(path)
    if not proposal.is_file():
        raise NotFoundError(
            f"{ws.relative(path)} has no proposal waiting",
            "kb writes <id>.proposed.md when a re-run of distill or import-docs finds a person's atom changed; "
            "'kb review' lists the atoms with one.",
        )
    return proposal, atoms.read(proposal)


def show(ws: Workspace, atom_id: str, findings: Sequence[Any] = ()) -> dict[str, Any]:
    """The atom's text, its findings, and its proposal as a unified diff (empty when there is none)."""
    path = find(ws, atom_id)
    rel = ws.relative(path)
    text = path.read_text(encoding="utf-8")
    proposal = _proposal(path)
    diff = ""
    if proposal.is_file():
        diff = "".join(
            difflib.unified_diff(
                text.splitlines(True),
                proposal.read_text(encoding="utf-8").splitlines(True),
                fromfile=rel,
                tofile=ws.relative(proposal),
            )
        )
    mine = [f for f in findings if str(_field(f, "path")) == rel]
    return {
        "id": atom_id,
        "path": rel,
        "text": text,
        "findings": mine,
        "proposal": ws.relative(proposal) if diff else None,
        "diff": diff,
    }


def accept(
    ws: Workspace, atom_id: str, *, today: dt.date | None = None, commit: bool = False, by: str | None = None
) -> Done:
    """Merge the proposal into the atom: kb's new content, the reviewer's own fields (title, status, tags, ...)."""
    today = today or dt.date.today()
    path = find(ws, atom_id)
    proposal, new = _read_proposal(ws, path)
    try:
        current: Atom | None = atoms.read(path)
    except InputError:
        current = None  # a person's file that does not parse: the proposal replaces it
    keep = {k: getattr(current.meta, k) for k in atoms.REVIEWER_FIELDS} if current else {}
    meta = new.meta.model_copy(
        update={
            **keep,
            "created": current.meta.created if current else new.meta.created,
            "updated": today,
            "version": (current.meta.version + 1) if current else new.meta.version,
        }
    )
    if all(getattr(new.meta, k) == v for k, v in keep.items()):
        meta = atoms.stamp(meta, new.body)  # nothing of the reviewer's differs: kb may update it again
    target = ws.atom_path(meta.type, meta.id)
    original = path.read_text(encoding="utf-8") if current and target == path else None
    atomic_write_text(target, atoms.render(meta, new.body, original))
    proposal.unlink()
    if target != path:
        path.unlink()
    done = Done(atom_id, "accepted", ws.relative(target), f"accepted kb's proposal for {ws.relative(target)}")
    if commit:
        done.commit = git_commit(
            ws.root, [target, path, proposal], f"kb review: accept proposal for {atom_id}", author=by
        )
    return done


def reject(ws: Workspace, atom_id: str, *, commit: bool = False, by: str | None = None) -> Done:
    """Remove the proposal and remember it: kb will not propose the same content again."""
    path = find(ws, atom_id)
    proposal, new = _read_proposal(ws, path)
    rejected = ws.rejected()
    key = atoms.content_key(new.meta, new.body)
    rejected[atom_id] = list(dict.fromkeys([*rejected.get(atom_id, []), key]))
    atomic_write_json(ws.rejected_file, rejected)
    proposal.unlink()
    done = Done(atom_id, "rejected", ws.relative(path), f"rejected kb's proposal for {ws.relative(path)} (remembered)")
    if commit:
        done.commit = git_commit(ws.root, [proposal], f"kb review: reject proposal for {atom_id}", author=by)
    return done


def promote(
    ws: Workspace,
    atom_id: str,
    to: str,
    *,
    by: str | None = None,
    findings: Sequence[Any] = (),
    today: dt.date | None = None,
    commit: bool = False,
) -> Done:
    """Move the atom to ``in-review`` or ``validated``, adding the reviewer to ``reviewed_by``."""
    if to not in ("in-review", "validated"):
        raise InputError(f"cannot promote to '{to}'", "Use --to in-review or --to validated.")
    name = by or git_identity(ws.root)[0]
    if not name:
        raise KbError(
            "who is promoting? git config user.name is not set and --by was not given",
            "Pass --by 'Your Name', or set it once: git config --global user.name 'Your Name'.",
        )
    path = find(ws, atom_id)
    rel = ws.relative(path)
    errors = [f for f in findings if str(_field(f, "path")) == rel and _field(f, "severity") == "error"]
    if errors:
        raise InputError(
            f"{rel} has {len(errors)} error(s) ({', '.join(sorted({str(_field(f, 'rule')) for f in errors}))})",
            f"Fix them first: kb check {rel}",
        )
    atom = atoms.read(path)
    if to == "validated" and atom.meta.needs:
        raise InputError(
            f"{rel} still lists what it needs: {'; '.join(atom.meta.needs)}",
            "Do those things and remove them from 'needs:', then validate it.",
        )
    reviewers = list(dict.fromkeys([*atom.meta.reviewed_by, name]))
    meta = atom.meta.model_copy(update={"status": to, "reviewed_by": reviewers, "updated": today or dt.date.today()})
    atoms.write(path, meta, atom.body)
    done = Done(atom_id, f"promoted to {to}", rel, f"{rel}: {atom.meta.status} -> {to} (by {name})")
    if commit:
        done.commit = git_commit(ws.root, [path], f"kb review: promote {atom_id} to {to} (by {name})", author=name)
    return done


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=lambda o: getattr(o, "__dict__", str(o)))
