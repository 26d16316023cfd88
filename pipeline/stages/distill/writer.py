"""From grounded items to atom files: consolidation, rendering and never-clobber writing.

Both backends produce ``Draft``s (a proposed atom with its sources). Consolidation merges
drafts whose titles match (rapidfuzz) across windows and interviews and maps them onto
existing atoms. Writing respects reviewers: an atom a person changed (its content no longer
matches ``generator.content_hash``) is never overwritten; the new version goes to
``<id>.proposed.md`` beside it. ``diff=True`` only computes unified diffs.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process, utils

from pipeline import atoms
from pipeline.errors import InputError
from pipeline.models import TYPE_SECTIONS, Atom, AtomMeta, Generator, InterviewSource
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace, atomic_write_text


@dataclass
class Draft:
    type: str
    title: str
    summary: str
    context: str = ""
    sections: list[tuple[str, str]] = field(default_factory=list)
    faq: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    prerequisites: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    sources: list[InterviewSource] = field(default_factory=list)
    kind: str = "llm"
    model: str | None = None
    prompt: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    @property
    def interviews(self) -> list[str]:
        return sorted({s.interview for s in self.sources})


def _uniq(items: list[str], threshold: float = 92.0) -> list[str]:
    out: list[str] = []
    for item in items:
        if not any(fuzz.ratio(item.lower(), o.lower()) >= threshold for o in out):
            out.append(item)
    return out


def merge(drafts: list[Draft], threshold: float) -> list[Draft]:
    """Merge drafts of the same type whose titles match (token_sort_ratio >= threshold)."""
    merged: list[Draft] = []
    for d in drafts:
        target = None
        for m in merged:
            if m.type == d.type and fuzz.token_sort_ratio(m.title.lower(), d.title.lower()) >= threshold:
                target = m
                break
        if target is None:
            merged.append(
                Draft(**{**d.__dict__, "sections": list(d.sections), "faq": list(d.faq), "sources": list(d.sources)})
            )
            continue
        by_heading = dict(target.sections)
        for heading, text in d.sections:
            old = by_heading.get(heading)
            if old is None:
                by_heading[heading] = text
            elif fuzz.partial_ratio(text, old) < 90:
                by_heading[heading] = old.rstrip() + "\n\n" + text.strip()
        target.sections = list(by_heading.items())
        for q, a in d.faq:
            if not any(fuzz.token_sort_ratio(q, q2) >= 90 for q2, _ in target.faq):
                target.faq.append((q, a))
        seen = {(s.interview, s.quote) for s in target.sources}
        target.sources += [s for s in d.sources if (s.interview, s.quote) not in seen]
        target.tags = _uniq(target.tags + d.tags)
        target.prerequisites = _uniq(target.prerequisites + d.prerequisites)
        target.related = _uniq(target.related + d.related)
        if not target.context and d.context:
            target.context = d.context
        target.tokens_in += d.tokens_in
        target.tokens_out += d.tokens_out
        target.cost_usd += d.cost_usd
    return merged


def render_body(d: Draft) -> str:
    parts: list[str] = []
    if d.context.strip():
        parts += [d.context.strip(), ""]
    by_heading = {h.strip().lower(): t for h, t in d.sections}
    for heading in TYPE_SECTIONS[d.type]:
        if heading == "FAQ":
            continue
        text = by_heading.get(heading.lower(), "").strip()
        parts += [f"## {heading}", "", text or "_Not covered in the interview._", ""]
    parts += ["## FAQ", ""]
    for q, a in d.faq:
        parts += [f"**Q:** {q.strip()}", f"**A:** {a.strip()}", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def _content_key(meta: AtomMeta, body: str) -> str:
    data = meta.model_dump(mode="json", exclude={"created", "updated", "version", "generator"})
    return json.dumps(data, sort_keys=True) + "\n" + body.strip()


@dataclass
class Existing:
    atoms: dict[str, Atom]  # id -> atom
    paths: dict[str, Path]  # id -> file
    broken: dict[str, Path]  # id -> file that does not parse (treated as human-owned)


def load_existing(ws: Workspace, reporter: Reporter) -> Existing:
    found: dict[str, Atom] = {}
    paths: dict[str, Path] = {}
    broken: dict[str, Path] = {}
    for path in ws.atom_files():
        try:
            atom = atoms.read(path)
        except InputError as exc:
            reporter.warn(f"{ws.relative(path)}: not readable ({exc.message}); kb will only propose changes to it")
            broken[path.stem] = path
            continue
        found[atom.meta.id] = atom
        paths[atom.meta.id] = path
    return Existing(found, paths, broken)


@dataclass
class Planned:
    draft: Draft
    atom_id: str
    path: Path
    title_on_disk: str


def plan_ids(drafts: list[Draft], existing: Existing, ws: Workspace, threshold: float) -> list[Planned]:
    """Map each draft onto an existing atom (same id, or same type and a matching title) or a new id."""
    titles = {aid: a.meta.title for aid, a in existing.atoms.items()}
    taken = set(existing.atoms) | set(existing.broken)
    planned: list[Planned] = []

    def ours(aid: str, d: Draft) -> bool:
        """An existing atom is this draft's only if it is of its type and cites no other interview."""
        atom = existing.atoms[aid]
        cited = {s.interview for s in atom.meta.sources if isinstance(s, InterviewSource)}
        return atom.meta.type == d.type and (not cited or bool(cited & set(d.interviews)))

    for d in drafts:
        slug = atoms.slugify(d.title)
        target: str | None = None
        if slug in existing.broken and slug not in existing.atoms:
            # a person's file of this id does not parse: propose beside it, never a second atom
            planned.append(Planned(d, slug, existing.broken[slug], d.title))
            continue
        if slug in existing.atoms and ours(slug, d):
            target = slug
        else:
            same_type = {aid: t for aid, t in titles.items() if ours(aid, d)}
            best = (
                process.extractOne(d.title, same_type, scorer=fuzz.token_sort_ratio, processor=utils.default_process)
                if same_type
                else None
            )
            if best and best[1] >= threshold:
                target = best[2]
        if target is not None:
            planned.append(Planned(d, target, existing.paths[target], existing.atoms[target].meta.title))
            continue
        atom_id, n = slug, 2
        while atom_id in taken:
            atom_id = f"{slug[:110]}-{n}"
            n += 1
        taken.add(atom_id)
        planned.append(Planned(d, atom_id, ws.atom_path(d.type, atom_id), d.title))
    return planned


def resolve_related(planned: list[Planned], existing: Existing, threshold: float = 85.0) -> None:
    """Keep only related titles that name an atom that will exist, spelled as on disk."""
    on_disk = {a.meta.title for a in existing.atoms.values()} | {p.title_on_disk for p in planned}
    for p in planned:
        out: list[str] = []
        choices = [t for t in on_disk if t != p.title_on_disk]
        for title in p.draft.related:
            best = (
                process.extractOne(title, choices, scorer=fuzz.token_sort_ratio, processor=utils.default_process)
                if choices
                else None
            )
            if best and best[1] >= threshold and best[0] not in out:
                out.append(best[0])
        p.draft.related = out


@dataclass
class Outcome:
    atom_id: str
    atom_type: str
    action: str  # created | updated | unchanged | proposed | proposal-unchanged
    path: Path
    diff: str = ""


def _meta_for(p: Planned, old: Atom | None, today: dt.date) -> AtomMeta:
    d = p.draft
    authors = sorted({s.speaker for s in d.sources})
    return AtomMeta(
        id=p.atom_id,
        title=d.title,
        type=d.type,  # type: ignore[arg-type]
        summary=d.summary,
        author=", ".join(authors) or None,
        created=old.meta.created if old else today,
        updated=today,
        version=(old.meta.version + 1) if old else 1,
        status="draft",
        tags=d.tags,
        related=d.related,
        prerequisites=d.prerequisites,
        sources=d.sources,
        generator=Generator(
            kind=d.kind,  # type: ignore[arg-type]
            model=d.model,
            prompt=d.prompt,
            tokens_in=d.tokens_in,
            tokens_out=d.tokens_out,
            cost_usd=round(d.cost_usd, 6),
        ),
    )


def _diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), fromfile=old_name, tofile=new_name))


def write_all(
    planned: list[Planned], existing: Existing, ws: Workspace, *, diff: bool = False, today: dt.date | None = None
) -> list[Outcome]:
    """Write (or, with ``diff``, only compare) every planned atom; never overwrite a human edit."""
    today = today or dt.date.today()
    outcomes: list[Outcome] = []
    for p in planned:
        old = existing.atoms.get(p.atom_id)
        path = p.path
        broken = p.atom_id in existing.broken and old is None
        body = render_body(p.draft)
        human = broken or (old is not None and atoms.is_human_edited(old))
        if old is not None and not human:
            candidate = _meta_for(p, None, today)
            if _content_key(candidate, body) == _content_key(old.meta, old.body):
                outcomes.append(Outcome(p.atom_id, p.draft.type, "unchanged", path))
                continue
        meta = atoms.stamp(_meta_for(p, old, today), body)
        rel = ws.relative(path)
        if human:
            if broken:
                path = existing.broken[p.atom_id]
                rel = ws.relative(path)
            proposal = path.with_name(path.stem + ".proposed.md")
            text = atoms.render(meta, body)
            current = path.read_text(encoding="utf-8")
            prior = proposal.read_text(encoding="utf-8") if proposal.is_file() else None
            if prior is not None and _same_proposal(prior, text):
                outcomes.append(Outcome(p.atom_id, p.draft.type, "proposal-unchanged", proposal))
                continue
            out = Outcome(p.atom_id, p.draft.type, "proposed", proposal, _diff(current, text, rel, rel + " (proposed)"))
            if not diff:
                atomic_write_text(proposal, text)
            outcomes.append(out)
            continue
        original = path.read_text(encoding="utf-8") if path.is_file() else None
        text = atoms.render(meta, body, original)
        out = Outcome(
            p.atom_id,
            p.draft.type,
            "updated" if original is not None else "created",
            path,
            _diff(original or "", text, rel if original is not None else "/dev/null", rel),
        )
        if not diff:
            atomic_write_text(path, text)
        outcomes.append(out)
    return outcomes


def _same_proposal(a: str, b: str) -> bool:
    """Equal but for the dates and costs of the run that wrote them."""
    try:
        x, y = atoms.parse(a), atoms.parse(b)
    except InputError:
        return False
    return _content_key(x.meta, x.body) == _content_key(y.meta, y.body)


def stale(existing: Existing, produced: set[str], kind: str, interviews: set[str]) -> list[str]:
    """Generated atoms (of ``kind``, unedited) citing only ``interviews`` that this run no longer produced."""
    out: list[str] = []
    for atom_id, atom in existing.atoms.items():
        gen = atom.meta.generator
        if atom_id in produced or gen is None or gen.kind != kind or atoms.is_human_edited(atom):
            continue
        cited = {s.interview for s in atom.meta.sources if isinstance(s, InterviewSource)}
        if cited and cited <= interviews:
            out.append(atom_id)
    return sorted(out)
