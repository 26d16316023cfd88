"""Titles of imported pieces: from their heading path, unique across the import (``kb import-docs``)."""

from __future__ import annotations

from pipeline.stages.import_docs.pieces import Piece
from pipeline.stages.import_docs.tree import Doc, Node

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


def assign_titles(pieces: list[Piece]) -> None:
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
