"""Index pages (pure Markdown, golden-tested): by type, tags, by interview, by expert, review queue, coverage."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from pipeline.findings import Finding
from pipeline.models import ATOM_TYPES, STATUSES, Atom, InterviewSource
from pipeline.stages.site.markup import (
    front_matter,
    interview_src,
    last_changed,
    link_to,
    md,
    norm_title,
    rel_md,
    table,
)
from pipeline.stages.site.model import (
    BY_EXPERT_PAGE,
    BY_INTERVIEW_PAGE,
    BY_TYPE_PAGE,
    COVERAGE_PAGE,
    INTERVIEWS_PAGE,
    QUEUE_PAGE,
    TAGS_PAGE,
    TYPE_LABELS,
    SiteModel,
    experts_of,
    sorted_atoms,
)
from pipeline.transcripts.markdown import stamp


def index_pages(
    model: SiteModel, findings: Sequence[Finding] | None = None, *, tags_listing: bool = True
) -> dict[str, str]:
    """The Markdown of every index page, by src_uri."""
    pages = {
        BY_TYPE_PAGE: _by_type(model),
        TAGS_PAGE: _tags(model, tags_listing),
        BY_INTERVIEW_PAGE: _by_interview(model),
        BY_EXPERT_PAGE: _by_expert(model),
        QUEUE_PAGE: _queue(model),
        COVERAGE_PAGE: _coverage(model, findings),
        INTERVIEWS_PAGE: _interviews(model),
    }
    return pages


def _by_type(model: SiteModel) -> str:
    src = BY_TYPE_PAGE
    lines = [front_matter("Atoms by type").rstrip("\n"), "", "# Atoms by type", ""]
    groups: dict[str, list[Atom]] = defaultdict(list)
    for atom in model.atoms:
        groups[atom.meta.type].append(atom)
    if not model.atoms:
        lines += ["No atoms yet.", ""]
    for atype in ATOM_TYPES:
        items = sorted_atoms(groups.get(atype, []))
        if not items:
            continue
        lines += [f"## {TYPE_LABELS[atype]} ({len(items)})", ""]
        lines += table(
            ["Atom", "Status", "Version", "Updated"],
            ([link_to(src, a), a.meta.status, a.meta.version, last_changed(a).isoformat()] for a in items),
        )
        lines.append("")
    return "\n".join(lines)


def _tags(model: SiteModel, listing: bool) -> str:
    lines = [front_matter("Tags").rstrip("\n"), "", "# Tags", ""]
    if listing:
        lines += ["Every tag used by an atom, with the atoms that carry it.", "", "<!-- material/tags -->", ""]
        return "\n".join(lines)
    by_tag: dict[str, list[Atom]] = defaultdict(list)
    for atom in model.atoms:
        for tag in atom.meta.tags:
            by_tag[tag].append(atom)
    for tag in sorted(by_tag, key=str.casefold):
        lines += [f"## {md(tag)}", ""] + [f"- {link_to(TAGS_PAGE, a)}" for a in sorted_atoms(by_tag[tag])] + [""]
    return "\n".join(lines)


def _citations(model: SiteModel) -> dict[str, dict[str, int]]:
    """interview id -> atom id -> number of quotes."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for atom in model.atoms:
        for source in atom.meta.sources:
            if isinstance(source, InterviewSource):
                out[source.interview][atom.meta.id] += 1
    return out


def _by_interview(model: SiteModel) -> str:
    src = BY_INTERVIEW_PAGE
    lines = [front_matter("Atoms by interview").rstrip("\n"), "", "# Atoms by interview", ""]
    cites = _citations(model)
    atoms = model.by_id_cached()
    ids = sorted(set(model.interviews) | set(cites))
    if not ids:
        lines += ["No interviews yet.", ""]
    for iid in ids:
        data = model.interviews.get(iid)
        if data is not None:
            date = f" ({data.interview.date.isoformat()})" if data.interview else ""
            lines += [f"## [{md(data.title)}]({rel_md(src, interview_src(iid))}){date}", ""]
            experts = experts_of(data)
            if experts:
                lines += ["Experts: " + ", ".join(md(n) for n in experts), ""]
        else:
            lines += [f"## {md(iid)} (no such interview)", ""]
        cited = cites.get(iid, {})
        if not cited:
            lines += ["No atom cites this interview yet.", ""]
            continue
        rows = [(link_to(src, atoms[aid]), atoms[aid].meta.type, atoms[aid].meta.status, n) for aid, n in cited.items()]
        rows.sort(key=lambda r: r[0].casefold())
        lines += table(["Atom", "Type", "Status", "Quotes"], rows) + [""]
    return "\n".join(lines)


def _by_expert(model: SiteModel) -> str:
    src = BY_EXPERT_PAGE
    lines = [front_matter("Atoms by expert").rstrip("\n"), "", "# Atoms by expert", ""]
    interviews_of: dict[str, list[str]] = defaultdict(list)
    for iid, data in sorted(model.interviews.items()):
        for name in experts_of(data):
            interviews_of[name].append(iid)
    quoted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for atom in model.atoms:
        for source in atom.meta.sources:
            if isinstance(source, InterviewSource):
                quoted[source.speaker][atom.meta.id] += 1
    names = sorted(set(interviews_of) | set(quoted), key=str.casefold)
    if not names:
        lines += ["No experts yet.", ""]
    atoms = model.by_id_cached()
    for name in names:
        lines += [f"## {md(name)}", ""]
        ivs = interviews_of.get(name, [])
        if ivs:
            links = [f"[{md(model.interviews[i].title)}]({rel_md(src, interview_src(i))})" for i in ivs]
            lines += ["Interviews: " + ", ".join(links), ""]
        cited = quoted.get(name, {})
        if cited:
            rows = [(link_to(src, atoms[a]), atoms[a].meta.type, atoms[a].meta.status, n) for a, n in cited.items()]
            rows.sort(key=lambda r: r[0].casefold())
            lines += table(["Atom", "Type", "Status", "Quotes"], rows) + [""]
        else:
            lines += ["No atom quotes this expert yet.", ""]
    return "\n".join(lines)


def _queue(model: SiteModel) -> str:
    src = QUEUE_PAGE
    lines = [front_matter("Review queue").rstrip("\n"), "", "# Review queue", ""]
    waiting = [a for a in model.atoms if a.meta.status in ("draft", "in-review")]
    waiting.sort(key=lambda a: (last_changed(a), a.meta.created, norm_title(a.meta.title)))
    if not waiting:
        lines += ["Nothing waits for review.", ""]
        return "\n".join(lines)
    counts = Counter(a.meta.status for a in waiting)
    lines += [
        f"{len(waiting)} atoms wait for review ({counts['in-review']} in review, {counts['draft']} drafts), "
        "oldest first.",
        "",
    ]
    rows = (
        (
            last_changed(a).isoformat(),
            link_to(src, a),
            a.meta.type,
            a.meta.status,
            md(a.meta.author) if a.meta.author else "",
            ", ".join(md(r) for r in a.meta.reviewed_by),
        )
        for a in waiting
    )
    lines += table(["Last changed", "Atom", "Type", "Status", "Author", "Reviewed by"], rows) + [""]
    return "\n".join(lines)


def _coverage(model: SiteModel, findings: Sequence[Finding] | None) -> str:
    src = COVERAGE_PAGE
    lines = [front_matter("Coverage").rstrip("\n"), "", "# Coverage", ""]
    lines += ["## Atoms by type and status", ""]
    grid = Counter((a.meta.type, a.meta.status) for a in model.atoms)
    rows = []
    for atype in ATOM_TYPES:
        counts = [grid[(atype, s)] for s in STATUSES]
        rows.append([TYPE_LABELS[atype], *counts, sum(counts)])
    totals = [sum(grid[(t, s)] for t in ATOM_TYPES) for s in STATUSES]
    rows.append(["**Total**", *totals, sum(totals)])
    lines += table(["Type", *STATUSES, "total"], rows) + [""]

    lines += ["## Atoms by interview", ""]
    cites = _citations(model)
    ids = sorted(set(model.interviews) | set(cites))
    if ids:
        irows = []
        for iid in ids:
            data = model.interviews.get(iid)
            name = (
                f"[{md(data.title)}]({rel_md(src, interview_src(iid))})" if data else f"{md(iid)} (no such interview)"
            )
            cited = cites.get(iid, {})
            irows.append([name, len(cited), sum(cited.values())])
        lines += table(["Interview", "Atoms", "Quotes"], irows) + [""]
    else:
        lines += ["No interviews yet.", ""]

    no_faq = sorted_atoms(a for a in model.atoms if not a.faq)
    no_src = sorted_atoms(a for a in model.atoms if not a.meta.sources)
    lines += [f"## Atoms without FAQ ({len(no_faq)})", ""]
    lines += ([f"- {link_to(src, a)}" for a in no_faq] or ["None."]) + [""]
    lines += [f"## Atoms without sources ({len(no_src)})", ""]
    lines += ([f"- {link_to(src, a)}" for a in no_src] or ["None."]) + [""]

    lines += ["## kb check findings", ""]
    if findings is None:
        lines += ["`kb check` was not run for this build (`kb site` runs it and lists its findings here).", ""]
    elif not findings:
        lines += ["`kb check` found nothing to fix.", ""]
    else:
        sev = Counter(str(f.severity or "") for f in findings)
        lines += [f"{sev.get('error', 0)} errors, {sev.get('warning', 0)} warnings.", ""]
        frows = []
        for f in sorted(findings, key=_finding_key):
            where = str(f.path or "")
            if f.line:
                where += f":{f.line}"
            frows.append([md(f.severity or ""), md(where), md(f.rule or ""), md(f.message or f)])
        lines += table(["Severity", "Where", "Rule", "Message"], frows) + [""]
    if model.problems:
        lines += [f"## Unreadable files ({len(model.problems)})", ""]
        lines += [f"- {md(p)}" for p in model.problems] + [""]
    return "\n".join(lines)


def _finding_key(f: Finding) -> tuple:
    order = {"error": 0, "warning": 1}
    return (order.get(str(f.severity), 2), str(f.path or ""), int(f.line or 0))


def _interviews(model: SiteModel) -> str:
    src = INTERVIEWS_PAGE
    lines = [front_matter("Interviews").rstrip("\n"), "", "# Interviews", ""]
    if not model.interviews:
        lines += ["No interviews yet: add one with `kb add RECORDING`.", ""]
        return "\n".join(lines)
    cites = _citations(model)
    rows = []
    for iid, data in sorted(
        model.interviews.items(), key=lambda kv: (str(kv[1].interview.date) if kv[1].interview else "", kv[0])
    ):
        date = data.interview.date.isoformat() if data.interview else ""
        t = data.transcript
        length = stamp(max((s.end for s in t.segments), default=0)) if t else "no transcript"
        rows.append(
            [
                f"[{md(data.title)}]({rel_md(src, interview_src(iid))})",
                date,
                ", ".join(md(n) for n in experts_of(data)),
                length,
                "yes" if data.recording else "no",
                len(cites.get(iid, {})),
            ]
        )
    lines += table(["Interview", "Date", "Experts", "Length", "Recording", "Atoms"], rows) + [""]
    return "\n".join(lines)


def home_page(model: SiteModel) -> str:
    """Used only when ``site/index.md`` is missing."""
    waiting = sum(a.meta.status in ("draft", "in-review") for a in model.atoms)
    return "\n".join(
        [
            front_matter("Home").rstrip("\n"),
            "",
            "# Knowledge base",
            "",
            f"{len(model.atoms)} atoms from {len(model.interviews)} interviews; "
            f"[{waiting} wait for review]({QUEUE_PAGE}). See also the [coverage]({COVERAGE_PAGE}).",
            "",
        ]
    )


# ---------------------------------------------------------------------------------------------
