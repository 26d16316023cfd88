"""Ranking the gaps: users' repeated questions first, then uncovered errors, drafts asked about, empty cells."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from pipeline import atoms
from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.index.gapstore import GapStore, open_gap_log
from pipeline.transcripts import interview as interview_file
from pipeline.workspace import Workspace

#: Types every well-covered topic should have an atom of (the empty cells worth an interview question).
CORE_TYPES = ("error", "procedure", "troubleshooting-tip", "pitfall")
KIND_ORDER = {"question": 0, "uncovered-error": 1, "asked-draft": 2, "empty-cell": 3}


@dataclass
class Ranked:
    kind: str  # question | uncovered-error | asked-draft | empty-cell
    text: str  # what to ask about (the users' own words for questions)
    count: int  # how many times users asked / triage saw it / atoms of the topic
    topic: str
    why: str
    examples: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # gap log keys (empty for coverage cells)
    atom_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GapsReport:
    items: list[Ranked] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # questions closed by this run
    open_questions: int = 0

    def __str__(self) -> str:
        kinds = Counter(i.kind for i in self.items)
        text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: KIND_ORDER[kv[0]])) or "no gaps"
        return text + (f"; {len(self.closed)} closed by the newest bundle" if self.closed else "")


def gap_log(ws: Workspace, settings: Settings) -> GapStore:
    """Where ``kb serve`` writes: the Postgres index's table with ``index.url`` set, else ``.kb/gaps.duckdb``."""
    return open_gap_log(ws.state_dir, settings)


def _atoms(ws: Workspace) -> list[Any]:
    out = []
    for path in ws.atom_files():
        try:
            out.append(atoms.read(path))
        except InputError:
            continue
    return out


def _topics(ws: Workspace, found: list[Any]) -> list[str]:
    """The interviews' declared topics, then tags three or more atoms share."""
    declared: list[str] = []
    for iid in ws.interview_ids():
        try:
            declared += interview_file.load(ws.interview_yaml(iid)).topics
        except Exception:  # noqa: BLE001 - a broken interview.yaml is kb check's to report
            continue
    tags = Counter(t for a in found for t in a.meta.tags)
    return list(dict.fromkeys([*declared, *[t for t, n in tags.most_common() if n >= 3]]))


def topic_of(text: str, topics: list[str], found: list[Any]) -> str:
    low = text.lower()
    for t in topics:
        if t.lower() in low or all(w in low for w in t.lower().split("-") if len(w) > 2):
            return t
    best, score = None, 0.0
    for a in found:
        s = fuzz.token_set_ratio(low, (a.meta.title + " " + " ".join(a.meta.tags)).lower())
        if s > score and a.meta.tags:
            best, score = a.meta.tags[0], s
    return best if best and score >= 50 else "other"


def _cluster(gaps: list[Any], threshold: float) -> list[list[Any]]:
    clusters: list[list[Any]] = []
    for g in sorted(gaps, key=lambda g: (-g.count, g.first_seen, g.key)):
        for c in clusters:
            if fuzz.token_set_ratio(g.text.lower(), c[0].text.lower()) >= threshold:
                c.append(g)
                break
        else:
            clusters.append([g])
    return clusters


def report(ws: Workspace, settings: Settings) -> GapsReport:
    """Every open gap, ranked: the users' questions by how often they were asked, then the rest."""
    found = _atoms(ws)
    topics = _topics(ws, found)
    log = gap_log(ws, settings)
    open_gaps = log.all("open")
    out = GapsReport(open_questions=sum(1 for g in open_gaps if g.kind == "question"))
    by_kind: dict[str, list[Any]] = {}
    for g in open_gaps:
        by_kind.setdefault(g.kind, []).append(g)
    for c in _cluster(by_kind.get("question", []), settings.gaps.repeat_threshold):
        n = sum(g.count for g in c)
        texts = [g.text for g in sorted(c, key=lambda g: (-g.count, g.first_seen, g.key))]
        best = max(g.evidence or 0.0 for g in c)
        out.items.append(
            Ranked(
                "question",
                texts[0],
                n,
                topic_of(texts[0], topics, found),
                f"asked {n} time(s) and answered uncertain (best evidence {best:.2f})",
                texts[:3],
                [g.key for g in c],
            )
        )
    for g in by_kind.get("uncovered-error", []):
        out.items.append(
            Ranked(
                "uncovered-error",
                g.text,
                g.count,
                topic_of(g.text, topics, found),
                f"kb triage saw it {g.count} time(s); no atom covers it",
                [g.text],
                [g.key],
            )
        )
    drafts: dict[str, list[Any]] = {}
    for g in by_kind.get("asked-draft", []):
        drafts.setdefault(g.atom_id or "", []).append(g)
    status = {a.meta.id: a for a in found}
    for atom_id, gs in drafts.items():
        atom = status.get(atom_id)
        if atom is None or atom.meta.status != "draft":
            continue  # reviewed since, or gone
        n = sum(g.count for g in gs)
        out.items.append(
            Ranked(
                "asked-draft",
                atom.meta.title,
                n,
                (atom.meta.tags or ["other"])[0],
                f"users were answered from this draft {n} time(s): review it (kb review show {atom_id})",
                [g.text for g in gs][:3],
                [g.key for g in gs],
                atom_id,
            )
        )
    out.items += _empty_cells(found, topics)
    out.items.sort(key=lambda i: (KIND_ORDER[i.kind], -i.count, i.topic, i.text))
    return out


def _empty_cells(found: list[Any], topics: list[str]) -> list[Ranked]:
    cells = []
    for t in topics:
        have = Counter(a.meta.type for a in found if t in a.meta.tags)
        total = sum(have.values())
        if not total:
            continue
        for atype in CORE_TYPES:
            if not have[atype]:
                cells.append(
                    Ranked("empty-cell", f"{atype} on {t}", total, t, f"{total} atom(s) on {t}, none of type {atype}")
                )
    return sorted(cells, key=lambda c: -c.count)[:12]


def close(ws: Workspace, settings: Settings, ask: Callable[[str], bool], bundle_id: str) -> list[str]:
    """Ask each open question again (``ask`` returns True when the answer is certain); close those answered.

    ``ask`` is the real answering function over the newest bundle, so a gap closes on what the
    bundle can now answer, never on a string match. Returns the questions closed.
    """
    log = gap_log(ws, settings)
    closed: list[str] = []
    keys: list[str] = []
    for g in log.all("open"):
        if g.kind == "question" and ask(g.text):
            closed.append(g.text)
            keys.append(g.key)
    log.close(keys, closed_by=bundle_id)
    return closed


def close_with_newest_bundle(ws: Workspace, settings: Settings) -> list[str]:
    """Re-ask every open question against dist/'s newest bundle with the answering function
    ``kb serve`` uses (same calibration); close those it now answers certain."""
    from pipeline.answer import answer
    from pipeline.answer.bundle import open_bundle
    from pipeline.answer.calibrate import calibrate
    from pipeline.index.bundle import newest_bundle

    if not any(g.kind == "question" for g in gap_log(ws, settings).all("open")):
        return []
    path = newest_bundle(ws.dist_dir)
    if path is None:
        return []  # no bundle yet: nothing to ask again
    loaded = open_bundle(path, settings)
    try:
        threshold = calibrate(loaded, settings).threshold
        return close(
            ws,
            settings,
            lambda q: not answer(loaded, q, settings, threshold=threshold).uncertain,
            loaded.manifest.checksum,
        )
    finally:
        loaded.close()
