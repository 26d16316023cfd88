"""Human-edit detection: ``generator.content_hash`` fingerprints what the pipeline wrote, so a later
run can tell that a person has edited the atom and must not overwrite it."""

from __future__ import annotations

import json

from pipeline.models import Atom, AtomMeta
from pipeline.workspace import sha256_text


def fingerprint(meta: AtomMeta, body: str) -> str:
    """sha256 of an atom's content, ignoring formatting and the fingerprint field itself."""
    data = meta.model_dump(mode="json", exclude_none=True)
    if not data.get("needs"):
        data.pop("needs", None)  # fingerprints of atoms written before the field existed stay valid
    if not data.get("applies_to"):  # added later: an atom without it keeps the hash it always had
        data.pop("applies_to", None)
    gen = data.get("generator")
    if isinstance(gen, dict):
        gen.pop("content_hash", None)
    return sha256_text(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n" + body.strip())


#: Fields that are the reviewer's to set: a proposal differing only in these is not worth writing.
REVIEWER_FIELDS = ("title", "status", "tags", "reviewed_by", "needs")


def content_key(meta: AtomMeta, body: str, *, ignore: tuple[str, ...] = ()) -> str:
    """sha256 of what an atom says, leaving out dates, version, generator and the ``ignore``d fields."""
    data = meta.model_dump(mode="json", exclude={"created", "updated", "version", "generator", *ignore})
    return sha256_text(json.dumps(data, sort_keys=True) + "\n" + body.strip())


def stamp(meta: AtomMeta, body: str) -> AtomMeta:
    """Return ``meta`` with ``generator.content_hash`` set to the fingerprint of (meta, body)."""
    if meta.generator is None:
        return meta
    gen = meta.generator.model_copy(update={"content_hash": fingerprint(meta, body)})
    return meta.model_copy(update={"generator": gen})


def is_human_edited(atom: Atom) -> bool:
    """True when a person changed the atom since the pipeline wrote it (or it was never generated)."""
    gen = atom.meta.generator
    if gen is None or gen.kind == "human" or not gen.content_hash:
        return True
    return fingerprint(atom.meta, atom.body) != gen.content_hash
