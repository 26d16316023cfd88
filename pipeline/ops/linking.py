"""Link an error group to the atoms that describe it: exact message, then fuzzy, then search.

Every atom yields *signatures*: the error messages it names (its title, the headings it was cut
from, the lines of its code blocks, its inline code, its FAQ questions, its Symptom section).
A log message matches a signature when, with values masked on both sides (``xxxx`` in the docs
is a value too), the signature occurs in the message (``exact``) or aligns with a part of it
(``fuzzy``, rapidfuzz ``partial_ratio``), weighted by how long the shared text is: a 40-char
message that matches says more than "permission denied". Without such a match, and with an index
loaded, the best search hit is taken only when its evidence is strong (``search``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.ops.masking import WILDCARD, mask_values

#: A match scores at least this (0..1) to link; below it the group is uncovered.
LINK_MIN_SCORE = 0.75
#: Signatures shorter than this (normalised characters) are too generic to match on their own.
MIN_SIGNATURE_CHARS = 16
#: The shared text at which a match counts fully (shorter matches are scaled down).
FULL_MATCH_CHARS = 36
#: Search fallback: the dense cosine a hit must reach.
SEARCH_MIN_COSINE = 0.62
MAX_ATOMS = 3
MAX_STEPS = 8

_CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE_CODE = re.compile(r"`([^`\n]{12,})`")
_QUOTED = re.compile(r"\"([^\"\n]{12,200})\"")
_INDENTED = re.compile(r"^(?: {4}|\t)(\S.*)$", re.M)
_PLACEHOLDER = re.compile(r"\b(?:x{3,}|y{3,}|<[a-z _-]+>)\b", re.I)
_NON_WORD = re.compile(r"[^a-z<*>]+")
_RESOLVE = re.compile(r"resolv|solution|fix|workaround|what to do|action|how to", re.I)
_FAQ_TITLE = re.compile(r"^FAQ:\s*|\s+and \d+ more$")


def normalise(text: str) -> str:
    """Lowercase words with values as ``<*>``: what signatures and messages are compared as."""
    text = _PLACEHOLDER.sub(WILDCARD, mask_values(text))
    words = _NON_WORD.sub(" ", text.lower()).split()
    out: list[str] = []
    for w in words:
        if w in ("<*>", "*") or "<*>" in w:
            w = "*"
        if w == "*" and out and out[-1] == "*":
            continue
        out.append(w)
    return " ".join(out)


@dataclass
class AtomRef:
    """What triage needs of an atom."""

    atom_id: str
    title: str
    type: str
    status: str
    body: str
    summary: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    faq: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Link:
    atom: AtomRef
    score: float
    how: str  # exact | fuzzy | search
    signature: str
    rank: float = 0.0  # the sort key: the score plus a little for each further matching message


def atom_ref(rec: dict[str, Any]) -> AtomRef:
    return AtomRef(
        atom_id=rec["id"],
        title=rec.get("title", rec["id"]),
        type=rec.get("type", ""),
        status=rec.get("status", "draft"),
        body=rec.get("body", ""),
        summary=rec.get("summary", "") or "",
        sources=list(rec.get("sources") or []),
        faq=list(rec.get("faq") or []),
    )


def signatures(atom: AtomRef) -> list[tuple[str, float]]:
    """The error messages an atom names, raw, with a weight: its title and headings name the
    error it is about (1.0); its body may also quote errors of neighbouring problems (0.98)."""
    named = [_FAQ_TITLE.sub("", atom.title)] + [str(s.get("heading")) for s in atom.sources if s.get("heading")]
    out: list[str] = []
    for block in _CODE_BLOCK.findall(atom.body):
        out += [ln.strip().lstrip("$#> ").strip() for ln in block.splitlines() if ln.strip()]
    out += _INLINE_CODE.findall(atom.body)
    out += _QUOTED.findall(atom.body)
    out += [ln.strip() for ln in _INDENTED.findall(atom.body)]
    out += [p.get("question", "") for p in atom.faq]
    for line in atom.body.splitlines():
        if line.startswith("```") and line.endswith("```") and len(line) > 6:
            out.append(line.strip("`"))
    return [(s, 1.0) for s in named if s] + [(s, 0.98) for s in out if s]


class Catalog:
    """The atoms of a knowledge base with their signatures, ready to match log messages."""

    def __init__(self, atoms: Iterable[AtomRef], index: Any | None = None):
        self.atoms: dict[str, AtomRef] = {}
        self._sig_text: list[str] = []
        self._sig_atom: list[str] = []
        self._sig_weight: list[float] = []
        for a in atoms:
            self.atoms[a.atom_id] = a
            seen: set[str] = set()
            for raw, weight in signatures(a):
                norm = normalise(raw)
                if len(norm.replace("*", "")) >= MIN_SIGNATURE_CHARS and norm not in seen:
                    seen.add(norm)
                    self._sig_text.append(norm)
                    self._sig_atom.append(a.atom_id)
                    self._sig_weight.append(weight)
        self._wild: dict[int, re.Pattern[str]] = {}
        self.index = index

    @classmethod
    def from_index(cls, index: Any) -> Catalog:
        return cls((atom_ref(index.atom(i)) for i in index.atom_ids), index=index)

    def __len__(self) -> int:
        return len(self.atoms)

    def link(self, message: str) -> list[Link]:
        """The atoms that describe ``message``, best first (empty: uncovered)."""
        from rapidfuzz import process

        m = normalise(message)
        if len(m.replace("*", "").strip()) < 8:
            return []
        per_atom: dict[str, list[tuple[float, bool, str]]] = {}
        for sig, score, i in process.extract(m, self._sig_text, scorer=_aligned, limit=80, score_cutoff=60):
            atom_id = self._sig_atom[i]
            shared = min(len(sig), len(m))
            weight = min(1.0, shared / FULL_MATCH_CHARS) * self._sig_weight[i]
            exact = sig in m or (m in sig and len(m) >= FULL_MATCH_CHARS // 2) or self._wild_match(i, sig, m)
            s = (1.0 if exact else score / 100.0) * weight
            if self.atoms[atom_id].type != "error":
                s *= 0.97  # an error atom wins a tie: it is written for exactly this
            per_atom.setdefault(atom_id, []).append((s, exact, sig))
        links = []
        for atom_id, found in per_atom.items():
            found.sort(key=lambda f: -f[0])
            s, exact, sig = found[0]
            if s < LINK_MIN_SCORE:
                continue
            # more of the atom's messages matching is more evidence: breaks ties between atoms
            # that quote the same error
            rank = s + (0.05 * found[1][0] if len(found) > 1 else 0.0)
            links.append(Link(self.atoms[atom_id], round(s, 3), "exact" if exact else "fuzzy", sig, rank))
        links.sort(key=lambda ln: (-ln.rank, ln.atom.atom_id))
        if not links and self.index is not None and hasattr(self.index, "search"):
            links = self._search(message)
        return links[:MAX_ATOMS]

    def _wild_match(self, i: int, sig: str, m: str) -> bool:
        """A signature's ``*`` (a value in the docs: ``'xxxx'``, an id) stands for up to 4 words."""
        if "*" not in sig:
            return False
        rx = self._wild.get(i)
        if rx is None:
            parts = [re.escape(p.strip()) for p in sig.split("*")]
            rx = self._wild[i] = re.compile(r"\s?(?:\S+\s?){0,4}?".join(parts))
        return rx.search(m) is not None

    def _search(self, message: str) -> list[Link]:
        try:
            if self.index is None:
                return []
            hits = self.index.search(message, k=3)
        except Exception:  # noqa: BLE001 - a search failure leaves the group uncovered, it never fails triage
            return []
        out = []
        for h in hits:
            cos = float(getattr(h, "dense_score", 0.0))
            if cos >= SEARCH_MIN_COSINE and h.atom_id in self.atoms:
                out.append(Link(self.atoms[h.atom_id], round(cos, 3), "search", ""))
        return out


def _aligned(a: str, b: str, **kwargs: Any) -> float:
    """partial_ratio of the shorter string inside the longer (rapidfuzz scorer signature)."""
    from rapidfuzz import fuzz

    return fuzz.partial_ratio(a, b, **kwargs)


def resolution(atom: AtomRef, focus: str = "") -> list[str]:
    """The atom's steps to resolve: its resolve/solution section, or the FAQ answer that matches."""
    text = ""
    if atom.faq:
        from rapidfuzz import fuzz

        f = normalise(focus)
        pair = max(atom.faq, key=lambda p: fuzz.partial_ratio(normalise(p.get("question", "")), f) if f else 0)
        text = pair.get("answer", "")
    if not text:
        text = _section(atom.body, _RESOLVE) or atom.summary or atom.body
    return _steps(text)


def _section(body: str, heading: re.Pattern[str]) -> str:
    parts = re.split(r"^#{2,4} +(.+)$", body, flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        if heading.search(parts[i]):
            return parts[i + 1].strip()
    return ""


def _steps(text: str) -> list[str]:
    items = re.findall(r"^\s*(?:[-*+]|\d+[.)])\s+(.+)$", text, flags=re.M)
    if len(items) >= 2 and sum(map(len, items)) / len(items) >= 40:  # steps, not a list of message parts
        steps = items
    else:
        steps = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return [s[:600] for s in steps[:MAX_STEPS]]


def workspace_atoms(ws: Any) -> list[AtomRef]:
    """The atoms of a workspace's ``atoms/`` folder (what triage links to without a bundle)."""
    from pipeline import atoms as atom_files

    out = []
    for path in ws.atom_files():
        try:
            a = atom_files.read(path)
        except Exception:  # noqa: BLE001 - kb check reports broken atoms; triage links to the rest
            continue
        out.append(
            AtomRef(
                atom_id=a.meta.id,
                title=a.meta.title,
                type=a.meta.type,
                status=a.meta.status,
                body=a.body,
                summary=a.meta.summary,
                sources=[s.model_dump(mode="json", exclude_none=True) for s in a.meta.sources],
                faq=[{"question": f.question, "answer": f.answer} for f in a.faq],
            )
        )
    return out
