"""What a reviewer acts on, in the site: the review queue (in ``kb review``'s order, with findings and
proposals as columns) and, on an atom page, its findings and kb's proposal as a diff."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pipeline.findings import review_rank as rank
from pipeline.models import Atom, DocumentSource, InterviewSource
from pipeline.stages.site.markup import esc, md, one_line
from pipeline.stages.site.markup import link_to as _link
from pipeline.stages.site.markup import table as _table
from pipeline.stages.site.model import SiteModel


def finding_field(finding: Any, name: str) -> Any:
    """A field of a check finding, given as a dataclass or as a dict (as in findings.json)."""
    return finding.get(name) if isinstance(finding, dict) else getattr(finding, name, None)


def _mine(model: SiteModel, atom: Atom, findings: Sequence[Any] | None) -> list[Any]:
    rel = model.rel_paths.get(atom.meta.id, "")
    return [
        f for f in findings or [] if str(finding_field(f, "path")) == rel and finding_field(f, "severity") != "info"
    ]


def _proposal_text(model: SiteModel, atom: Atom) -> str | None:
    rel = model.rel_paths.get(atom.meta.id)
    if not rel:
        return None
    path = model.workspace.root / rel
    proposal = path.with_name(path.stem + ".proposed.md")
    return proposal.read_text(encoding="utf-8") if proposal.is_file() else None


def _source(atom: Atom) -> str:
    for s in atom.meta.sources:
        if isinstance(s, InterviewSource):
            return f"interview {s.interview}"
        if isinstance(s, DocumentSource):
            return f"document {s.document}"
    return "written by hand"


def queue_page(model: SiteModel, findings: Sequence[Any] | None, src: str, header: list[str]) -> str:
    """The review queue: every atom a reviewer should act on, in ``kb review``'s order."""
    rows = []
    for a in model.atoms:
        mine = _mine(model, a, findings)
        errors = sum(finding_field(f, "severity") == "error" for f in mine)
        warnings = len(mine) - errors
        proposal = _proposal_text(model, a) is not None
        if a.meta.status in ("validated", "archived") and not (mine or proposal):
            continue
        key = rank(errors, warnings, proposal, a.meta.status, _source(a), a.meta.created.isoformat(), a.meta.id)
        rules = ", ".join(sorted({str(finding_field(f, "rule")) for f in mine}))
        rows.append((key, a, errors, warnings, rules, proposal))
    rows.sort(key=lambda r: r[0])
    lines = list(header)
    if not rows:
        return "\n".join(lines + ["Nothing waits for review.", ""])
    lines += [
        f"{len(rows)} atoms wait for a reviewer, in the order `kb review` lists them: errors, other findings, "
        "proposals waiting, then drafts by source and age.",
        "",
    ]
    table = [
        (
            _link(src, a),
            a.meta.type,
            a.meta.status,
            md(_source(a)),
            a.meta.created.isoformat(),
            str(e) if e else "",
            str(w) if w else "",
            md(rules),
            "yes" if p else "",
            md("; ".join(n.split(":", 1)[0] for n in a.meta.needs)),
        )
        for _, a, e, w, rules, p in rows
    ]
    lines += _table(
        ["Atom", "Type", "Status", "Source", "Created", "Errors", "Warnings", "Findings", "Proposal", "Needs"], table
    )
    return "\n".join(lines + [""])


def review_box(model: SiteModel, atom: Atom, findings: Sequence[Any] | None) -> str:
    """The atom page's box of what a reviewer should act on: findings, ``needs``, kb's proposal (a diff)."""
    mine = _mine(model, atom, findings)
    proposal = _proposal_text(model, atom)
    if not (mine or proposal or atom.meta.needs):
        return ""
    parts = ['<div class="kb-review" data-atom="' + esc(atom.meta.id) + '">']
    if mine:
        items = "".join(
            f'<li class="kb-finding kb-finding--{esc(finding_field(f, "severity"))}">'
            f"{esc(finding_field(f, 'severity'))} line {esc(finding_field(f, 'line') or 1)}: "
            f"<code>{esc(finding_field(f, 'rule'))}</code> {one_line(finding_field(f, 'message'))}</li>"
            for f in mine
        )
        parts.append(f'<p><strong>kb check findings</strong></p><ul class="kb-findings">{items}</ul>')
    if atom.meta.needs:
        items = "".join(f"<li>{one_line(n)}</li>" for n in atom.meta.needs)
        parts.append(f'<p><strong>Needs</strong></p><ul class="kb-needs">{items}</ul>')
    if proposal is not None:
        rel = model.rel_paths.get(atom.meta.id, "")
        current = (model.workspace.root / rel).read_text(encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(current.splitlines(True), proposal.splitlines(True), rel, rel + " (proposed)")
        )
        parts.append(
            f'<details class="kb-proposal" open><summary>kb proposes a new version '
            f"(<code>kb review accept {esc(atom.meta.id)}</code> or <code>kb review reject {esc(atom.meta.id)}</code>)"
            f'</summary><pre class="kb-diff">{esc(diff).replace(chr(10), "&#10;")}</pre></details>'
        )
    parts.append("</div>")
    return "".join(parts)
