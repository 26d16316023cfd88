"""mkdocs hooks of the review site: pages for atoms, transcripts and indexes, made from the workspace.

``kb site`` registers :class:`SiteHooks` on the mkdocs config it loads; the module-level ``on_*``
functions let a plain ``mkdocs build`` use the same logic (``hooks: [path/to/site_hooks.py]``).

Nothing is written into ``site/``: atoms (``atoms/<type>/<id>.md``), transcripts
(``interviews/<id>.md``) and index pages are virtual files added in ``on_files``, so mkdocs
renders, links and searches them like any page, and strict mode validates every Markdown link.

Safety: every value taken from atom front matter, interview files or transcripts is HTML-escaped
where it is put into a page (titles and tags too, because mkdocs-material prints them unescaped),
and the rendered HTML of every generated page is sanitised with nh3, so a reviewer- or
LLM-written atom body cannot carry script, event handlers or ``javascript:`` links.
"""

from __future__ import annotations

import bisect
import datetime as dt
import html
import logging
import os
import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pipeline import atoms as atom_files
from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.models import ATOM_TYPES, STATUSES, Atom, DocumentSource, Interview, InterviewSource, Transcript
from pipeline.transcripts.markdown import stamp
from pipeline.workspace import Workspace

log = logging.getLogger("mkdocs.plugins.kb")

#: Index pages (src_uri -> nav title), in nav order after the home page.
QUEUE_PAGE = "review-queue.md"
COVERAGE_PAGE = "coverage.md"
BY_TYPE_PAGE = "browse/by-type.md"
TAGS_PAGE = "browse/tags.md"
BY_INTERVIEW_PAGE = "browse/by-interview.md"
BY_EXPERT_PAGE = "browse/by-expert.md"
INTERVIEWS_PAGE = "interviews/index.md"
ASSETS = ("assets/kb/kb.css", "assets/kb/kb.js")
#: material's offline plugin adds this shim from unpkg.com; kb ships a copy so nothing is fetched.
SHIM = "assets/kb/iframe-worker-shim.js"

TYPE_LABELS = {t: t.replace("-", " ").capitalize() for t in ATOM_TYPES} | {"faq": "FAQ"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".webm", ".mp4", ".weba"}


# ---------------------------------------------------------------------------------------------
# escaping: HTML for raw blocks, Markdown-inert text for Markdown


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]<>&|~^$!#]")


def md(value: Any) -> str:
    """Text that Markdown renders literally: whitespace collapsed, markup characters as entities."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", text)


def one_line(value: Any) -> str:
    """Escaped HTML text on one line (a blank line would end a raw HTML block in Markdown)."""
    return esc(" ".join(str(value).split()))


def _norm_title(title: str) -> str:
    return " ".join(title.casefold().split())


# ---------------------------------------------------------------------------------------------
# the workspace as the site sees it


@dataclass
class InterviewData:
    id: str
    interview: Interview | None
    transcript: Transcript | None
    recording: Path | None
    path: Path

    @property
    def title(self) -> str:
        return self.interview.title if self.interview else self.id


@dataclass
class Problem:
    """A file the site could not read (shown on the coverage page; fatal in strict builds)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class SiteModel:
    """Atoms and interviews of a workspace, with the lookups the pages need."""

    workspace: Workspace
    atoms: list[Atom] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # atom id -> file text
    rel_paths: dict[str, str] = field(default_factory=dict)  # atom id -> path relative to workspace
    interviews: dict[str, InterviewData] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def load(cls, workspace: Workspace) -> SiteModel:
        model = cls(workspace)
        seen: dict[str, str] = {}
        for path in workspace.atom_files():
            rel = workspace.relative(path)
            try:
                text = atom_files.read_bytes(path)
                atom = atom_files.parse(text, rel)
            except InputError as exc:
                model.problems.append(
                    Problem(rel, exc.line, exc.message.split(": ", 1)[-1] if exc.path else exc.message)
                )
                continue
            if atom.meta.id in seen:
                model.problems.append(
                    Problem(rel, None, f"atom id '{atom.meta.id}' is also used by {seen[atom.meta.id]}")
                )
                continue
            seen[atom.meta.id] = rel
            model.atoms.append(atom)
            model.texts[atom.meta.id] = text
            model.rel_paths[atom.meta.id] = rel
        for iid in workspace.interview_ids():
            model.interviews[iid] = model._load_interview(iid)
        return model

    def _load_interview(self, iid: str) -> InterviewData:
        folder = self.workspace.interview_dir(iid)
        interview: Interview | None = None
        yaml_path = folder / "interview.yaml"
        rel = self.workspace.relative(yaml_path)
        try:
            data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
            interview = Interview.model_validate(data)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            self.problems.append(Problem(rel, line, f"not valid YAML ({exc.problem})"))
        except (OSError, ValueError) as exc:
            self.problems.append(Problem(rel, None, _first_error(exc)))
        transcript: Transcript | None = None
        tpath = folder / "transcript.json"
        if tpath.is_file():
            try:
                transcript = Transcript.model_validate_json(tpath.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                self.problems.append(Problem(self.workspace.relative(tpath), None, _first_error(exc)))
        recording = None
        if interview is not None:
            for media in interview.media:
                if media.kind != "recording":
                    continue
                candidate = Path(media.file) if Path(media.file).is_absolute() else folder / media.file
                if candidate.is_file() and candidate.suffix.lower() in AUDIO_SUFFIXES:
                    recording = candidate
                    break
        return InterviewData(iid, interview, transcript, recording, folder)

    # lookups -----------------------------------------------------------------------------
    def by_id(self) -> dict[str, Atom]:
        return {a.meta.id: a for a in self.atoms}

    def resolve_related(self, title: str) -> Atom | None:
        """The atom a ``related`` title names: same title (case and spacing ignored) or same id."""
        if not hasattr(self, "_titles"):
            self._titles = {_norm_title(a.meta.title): a for a in self.atoms}
        hit = self._titles.get(_norm_title(title))
        if hit is None:
            hit = self.by_id_cached().get(atom_files.slugify(title))
        return hit

    def by_id_cached(self) -> dict[str, Atom]:
        if not hasattr(self, "_by_id"):
            self._by_id = self.by_id()
        return self._by_id

    def citing_atoms(self, interview_id: str) -> list[Atom]:
        """Atoms quoting an interview, sorted by title."""
        if not hasattr(self, "_citing"):
            groups: dict[str, list[Atom]] = defaultdict(list)
            for atom in _sorted(self.atoms):
                for iid in dict.fromkeys(s.interview for s in atom.meta.sources if isinstance(s, InterviewSource)):
                    groups[iid].append(atom)
            self._citing = groups
        return self._citing.get(interview_id, [])

    def speaker_role(self, interview_id: str, name: str) -> str | None:
        data = self.interviews.get(interview_id)
        if data is None:
            return None
        if data.transcript is not None:
            for sp in data.transcript.speakers:
                if sp.name == name and sp.role != "unknown":
                    return sp.role
        if data.interview is not None:
            for person in data.interview.people:
                if person.name == name or name in person.aliases:
                    return person.role
        return None


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            return f"field '{loc}': {first.get('msg')}" if loc else str(first.get("msg"))
        except Exception:  # pragma: no cover - defensive
            pass
    return str(exc).splitlines()[0]


def atom_src(atom: Atom) -> str:
    """An atom's page source: its file's path in the workspace, so links in its body resolve as in git."""
    path = (atom.path or "").replace(os.sep, "/")
    if path.startswith("atoms/") and path.endswith(".md"):
        return path
    return f"atoms/{atom.meta.type}/{atom.meta.id}.md"


def interview_src(iid: str) -> str:
    return f"interviews/{iid}.md"


def rel_md(from_src: str, to_src: str) -> str:
    """Relative Markdown link between two source files (mkdocs validates and rewrites it)."""
    return posixpath.relpath(to_src, posixpath.dirname(from_src) or ".")


def front_matter(title: str, **extra: Any) -> str:
    data = {"title": esc(title), **extra}
    return "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=4096) + "---\n\n"


def _last_changed(atom: Atom) -> dt.date:
    return atom.meta.updated or atom.meta.created


def _link(from_src: str, atom: Atom) -> str:
    return f"[{md(atom.meta.title)}]({rel_md(from_src, atom_src(atom))})"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _experts_of(data: InterviewData) -> list[str]:
    names: list[str] = []
    if data.interview is not None:
        names += [p.name for p in data.interview.people if p.role == "expert"]
    if data.transcript is not None:
        names += [s.name for s in data.transcript.speakers if s.role == "expert" and s.name not in names]
    return names


# ---------------------------------------------------------------------------------------------
# index pages (pure Markdown: golden-tested)


def index_pages(
    model: SiteModel, findings: Sequence[Any] | None = None, *, tags_listing: bool = True
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


def _sorted(atoms: Iterable[Atom]) -> list[Atom]:
    return sorted(atoms, key=lambda a: (_norm_title(a.meta.title), a.meta.id))


def _by_type(model: SiteModel) -> str:
    src = BY_TYPE_PAGE
    lines = [front_matter("Atoms by type").rstrip("\n"), "", "# Atoms by type", ""]
    groups: dict[str, list[Atom]] = defaultdict(list)
    for atom in model.atoms:
        groups[atom.meta.type].append(atom)
    if not model.atoms:
        lines += ["No atoms yet.", ""]
    for atype in ATOM_TYPES:
        items = _sorted(groups.get(atype, []))
        if not items:
            continue
        lines += [f"## {TYPE_LABELS[atype]} ({len(items)})", ""]
        lines += _table(
            ["Atom", "Status", "Version", "Updated"],
            ([_link(src, a), a.meta.status, a.meta.version, _last_changed(a).isoformat()] for a in items),
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
        lines += [f"## {md(tag)}", ""] + [f"- {_link(TAGS_PAGE, a)}" for a in _sorted(by_tag[tag])] + [""]
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
            experts = _experts_of(data)
            if experts:
                lines += ["Experts: " + ", ".join(md(n) for n in experts), ""]
        else:
            lines += [f"## {md(iid)} (no such interview)", ""]
        cited = cites.get(iid, {})
        if not cited:
            lines += ["No atom cites this interview yet.", ""]
            continue
        rows = [(_link(src, atoms[aid]), atoms[aid].meta.type, atoms[aid].meta.status, n) for aid, n in cited.items()]
        rows.sort(key=lambda r: r[0].casefold())
        lines += _table(["Atom", "Type", "Status", "Quotes"], rows) + [""]
    return "\n".join(lines)


def _by_expert(model: SiteModel) -> str:
    src = BY_EXPERT_PAGE
    lines = [front_matter("Atoms by expert").rstrip("\n"), "", "# Atoms by expert", ""]
    interviews_of: dict[str, list[str]] = defaultdict(list)
    for iid, data in sorted(model.interviews.items()):
        for name in _experts_of(data):
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
            rows = [(_link(src, atoms[a]), atoms[a].meta.type, atoms[a].meta.status, n) for a, n in cited.items()]
            rows.sort(key=lambda r: r[0].casefold())
            lines += _table(["Atom", "Type", "Status", "Quotes"], rows) + [""]
        else:
            lines += ["No atom quotes this expert yet.", ""]
    return "\n".join(lines)


def _queue(model: SiteModel) -> str:
    src = QUEUE_PAGE
    lines = [front_matter("Review queue").rstrip("\n"), "", "# Review queue", ""]
    waiting = [a for a in model.atoms if a.meta.status in ("draft", "in-review")]
    waiting.sort(key=lambda a: (_last_changed(a), a.meta.created, _norm_title(a.meta.title)))
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
            _last_changed(a).isoformat(),
            _link(src, a),
            a.meta.type,
            a.meta.status,
            md(a.meta.author) if a.meta.author else "",
            ", ".join(md(r) for r in a.meta.reviewed_by),
        )
        for a in waiting
    )
    lines += _table(["Last changed", "Atom", "Type", "Status", "Author", "Reviewed by"], rows) + [""]
    return "\n".join(lines)


def _coverage(model: SiteModel, findings: Sequence[Any] | None) -> str:
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
    lines += _table(["Type", *STATUSES, "total"], rows) + [""]

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
        lines += _table(["Interview", "Atoms", "Quotes"], irows) + [""]
    else:
        lines += ["No interviews yet.", ""]

    no_faq = _sorted(a for a in model.atoms if not a.faq)
    no_src = _sorted(a for a in model.atoms if not a.meta.sources)
    lines += [f"## Atoms without FAQ ({len(no_faq)})", ""]
    lines += ([f"- {_link(src, a)}" for a in no_faq] or ["None."]) + [""]
    lines += [f"## Atoms without sources ({len(no_src)})", ""]
    lines += ([f"- {_link(src, a)}" for a in no_src] or ["None."]) + [""]

    lines += ["## kb check findings", ""]
    if findings is None:
        lines += ["`kb check` was not run for this build (`kb site` runs it and lists its findings here).", ""]
    elif not findings:
        lines += ["`kb check` found nothing to fix.", ""]
    else:
        sev = Counter(str(finding_field(f, "severity") or "") for f in findings)
        lines += [f"{sev.get('error', 0)} errors, {sev.get('warning', 0)} warnings.", ""]
        frows = []
        for f in sorted(findings, key=_finding_key):
            where = str(finding_field(f, "path") or "")
            if finding_field(f, "line"):
                where += f":{finding_field(f, 'line')}"
            frows.append(
                [
                    md(finding_field(f, "severity") or ""),
                    md(where),
                    md(finding_field(f, "rule") or ""),
                    md(finding_field(f, "message") or f),
                ]
            )
        lines += _table(["Severity", "Where", "Rule", "Message"], frows) + [""]
    if model.problems:
        lines += [f"## Unreadable files ({len(model.problems)})", ""]
        lines += [f"- {md(p)}" for p in model.problems] + [""]
    return "\n".join(lines)


def finding_field(finding: Any, name: str) -> Any:
    """A field of a check finding, given as a dataclass or as a dict (as in findings.json)."""
    if isinstance(finding, dict):
        return finding.get(name)
    return getattr(finding, name, None)


def _finding_key(f: Any) -> tuple:
    order = {"error": 0, "warning": 1}
    return (
        order.get(str(finding_field(f, "severity")), 2),
        str(finding_field(f, "path") or ""),
        int(finding_field(f, "line") or 0),
    )


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
                ", ".join(md(n) for n in _experts_of(data)),
                length,
                "yes" if data.recording else "no",
                len(cites.get(iid, {})),
            ]
        )
    lines += _table(["Interview", "Date", "Experts", "Length", "Recording", "Atoms"], rows) + [""]
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
# atom and transcript pages (Markdown with escaped raw-HTML blocks)

UrlFn = Callable[[str, str], str]  # (from src_uri, to src_uri or asset path) -> relative URL


def atom_page(model: SiteModel, atom: Atom, url: UrlFn, edit_url: str | None) -> str:
    meta = atom.meta
    src = atom_src(atom)
    tags = [esc(t) for t in meta.tags]
    parts = [front_matter(meta.title, tags=tags).rstrip("\n") if tags else front_matter(meta.title).rstrip("\n"), ""]
    parts += [f"# {md(meta.title)}", "", _atom_header(model, atom, edit_url), ""]
    if meta.summary:
        parts += [f'<p class="kb-summary">{one_line(meta.summary)}</p>', ""]
    body, faq_cut = _body_without_faq(model, atom)
    parts += [body.strip(), ""]
    if faq_cut:
        parts += ["## FAQ", ""]
        for pair in atom.faq:
            parts += [
                f"### {md(pair.question)} {{: .kb-faq-q }}",
                "",
                f"**A:** {pair.answer.strip()}" if pair.answer.strip() else "**A:** (no answer yet)",
                "",
            ]
    if meta.related:
        parts += ["## Related", ""]
        for title in meta.related:
            target = model.resolve_related(title)
            if target is not None:
                parts.append(f"- {_link(src, target)}")
            else:
                parts.append(
                    f'- <span class="kb-unresolved" title="No atom has this title">{one_line(title)}</span> '
                    "(no atom has this title yet)"
                )
        parts.append("")
    if meta.sources:
        parts += ["## Sources", "", _sources_box(model, atom, url), ""]
    return "\n".join(parts)


def _atom_header(model: SiteModel, atom: Atom, edit_url: str | None) -> str:
    meta = atom.meta
    facts: list[tuple[str, str]] = [("Version", esc(meta.version))]
    if meta.author:
        facts.append(("Author", one_line(meta.author)))
    facts.append(("Created", esc(meta.created.isoformat())))
    if meta.updated:
        facts.append(("Updated", esc(meta.updated.isoformat())))
    facts.append(("Reviewed by", ", ".join(one_line(r) for r in meta.reviewed_by) or "nobody yet"))
    if meta.prerequisites:
        facts.append(("Prerequisites", "; ".join(one_line(p) for p in meta.prerequisites)))
    gen = meta.generator
    if gen is not None:
        what = gen.kind + (f" {gen.model}" if gen.model else "") + (f" ({gen.prompt})" if gen.prompt else "")
        edited = " · edited by a person since" if atom_files.is_human_edited(atom) and gen.kind != "human" else ""
        facts.append(("Generated by", one_line(what) + edited))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    edit = f'<a class="kb-edit" href="{esc(edit_url)}">Edit this atom</a>' if edit_url else ""
    path = esc(model.rel_paths.get(meta.id, ""))
    return "\n".join(
        [
            f'<div class="kb-atom-header" data-atom="{esc(meta.id)}">',
            f'<span class="kb-badge kb-type kb-type--{esc(meta.type)}">{esc(TYPE_LABELS[meta.type])}</span> '
            f'<span class="kb-badge kb-status kb-status--{esc(meta.status)}">{esc(meta.status)}</span> '
            f'<code class="kb-path">{path}</code> {edit}',
            f'<dl class="kb-facts">{dl}</dl>',
            "</div>",
        ]
    )


def _body_without_faq(model: SiteModel, atom: Atom) -> tuple[str, bool]:
    """The body with its ``## FAQ`` section cut out (rendered from the parsed pairs instead)."""
    if not atom.faq:
        return atom.body, False
    text = model.texts.get(atom.meta.id)
    body_line = atom_files.split(text).body_line if text else 1
    lines = atom.body.split("\n")
    faq = next((s for s in atom.sections if s.level == 2 and s.heading.strip().casefold() == "faq"), None)
    if faq is None:
        return atom.body, False
    start = faq.line - body_line
    end = len(lines)
    for s in atom.sections:
        if s.line > faq.line and s.level <= 2:
            end = s.line - body_line
            break
    return "\n".join(lines[:start] + lines[end:]), True


def _sources_box(model: SiteModel, atom: Atom, url: UrlFn) -> str:
    src = atom_src(atom)
    items = []
    for source in atom.meta.sources:
        if isinstance(source, InterviewSource):
            data = model.interviews.get(source.interview)
            role = model.speaker_role(source.interview, source.speaker) or "speaker"
            span = f"{stamp(source.start)}–{stamp(source.end)}"
            if data is not None:
                href = url(src, interview_src(source.interview)) + f"#t={int(source.start)}"
                when = f'<a class="kb-time" href="{esc(href)}" data-t="{source.start:g}">{span}</a>'
                where = f'<span class="kb-interview">{one_line(data.title)}</span>'
            else:
                when = f'<span class="kb-time">{span}</span>'
                where = (
                    f'<span class="kb-unresolved" title="No such interview in interviews/">'
                    f"{one_line(source.interview)} (interview not found)</span>"
                )
            items.append(
                '<li class="kb-source">'
                f'<blockquote class="kb-quote">{one_line(source.quote)}</blockquote>'
                f'<div class="kb-source-by"><span class="kb-speaker">{one_line(source.speaker)}</span>'
                f' <span class="kb-role">{esc(role)}</span> · {when} · {where}</div></li>'
            )
        elif isinstance(source, DocumentSource):
            line = f" (line {source.line})" if source.line else ""
            items.append(
                '<li class="kb-source kb-source--doc">'
                f'<span class="kb-doc">{one_line(source.document)}</span> › '
                f'<span class="kb-heading">{one_line(source.heading)}</span>{esc(line)}</li>'
            )
    return '<div class="kb-sources">\n<ol>\n' + "\n".join(items) + "\n</ol>\n</div>"


def _citing(model: SiteModel, iid: str, transcript: Transcript) -> dict[int, list[Atom]]:
    """segment id -> atoms whose quotes cover it (nearest preceding segment when none overlaps)."""
    out: dict[int, list[Atom]] = defaultdict(list)
    segs = sorted(transcript.segments, key=lambda s: s.start)
    if not segs:
        return out
    starts = [s.start for s in segs]
    longest = max(s.end - s.start for s in segs)
    for atom in model.citing_atoms(iid):
        hit_ids: set[int] = set()
        for source in atom.meta.sources:
            if not isinstance(source, InterviewSource) or source.interview != iid:
                continue
            end = max(source.end, source.start + 0.01)
            lo = bisect.bisect_left(starts, source.start - longest)
            hi = bisect.bisect_left(starts, end)
            ids = [s.id for s in segs[lo:hi] if s.end > source.start]
            if not ids:
                before = bisect.bisect_right(starts, source.start) - 1
                ids = [segs[max(before, 0)].id]
            hit_ids.update(ids)
        for sid in sorted(hit_ids):
            out[sid].append(atom)
    return out


TRANSCRIPT_SLOT = '<div class="kb-transcript" data-kb-slot="turns"></div>'


def transcript_page(model: SiteModel, data: InterviewData, url: UrlFn, media_src: str | None) -> tuple[str, str]:
    """The page's Markdown, and the HTML of its turns that replaces ``TRANSCRIPT_SLOT`` once rendered.

    The turns skip Markdown (they are escaped HTML already; a long interview would only make
    Python-Markdown's HTML-block scanner slow)."""
    src = interview_src(data.id)
    iv = data.interview
    parts = [front_matter(data.title).rstrip("\n"), "", f"# {md(data.title)}", ""]
    facts: list[tuple[str, str]] = []
    if iv is not None:
        facts.append(("Date", esc(iv.date.isoformat())))
        facts.append(("Language", esc(iv.language)))
        people = [
            one_line(p.name)
            + f' <span class="kb-role">{esc(p.role)}</span>'
            + (f" ({one_line(p.title)})" if p.title else "")
            for p in iv.people
        ]
        if people:
            facts.append(("People", ", ".join(people)))
        if iv.topics:
            facts.append(("Topics", ", ".join(one_line(t) for t in iv.topics)))
        facts.append(
            (
                "Consent",
                f"recorded: {'yes' if iv.consent.recorded else 'no'}, publish: {'yes' if iv.consent.publish else 'no'}",
            )
        )
    t = data.transcript
    if t is not None:
        what = (
            t.source.kind
            + (f" {t.source.backend}" if t.source.backend else "")
            + (f" {t.source.model}" if t.source.model else "")
        )
        facts.append(("Transcript", one_line(what) + f", timing {esc(t.source.timing)}"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    parts += [
        f'<div class="kb-interview-header" data-interview="{esc(data.id)}">',
        f'<dl class="kb-facts">{dl}</dl>',
        "</div>",
        "",
    ]
    if media_src is not None:
        parts += [
            '<div class="kb-player">',
            f'<audio class="kb-audio" controls preload="metadata" src="{esc(url(src, media_src))}"></audio>',
            "</div>",
            "",
        ]
    else:
        parts += ['<p class="kb-no-audio">No recording is available for this interview.</p>', ""]
    parts += ["## Transcript", ""]
    if t is None:
        parts += [f"No transcript yet: run `kb transcribe {md(data.id)}`.", ""]
        return "\n".join(parts), ""
    citing = _citing(model, data.id, t)
    turns: list[list] = []
    for seg in sorted(t.segments, key=lambda s: (s.start, s.id)):
        if turns and turns[-1][0].speaker == seg.speaker:
            turns[-1].append(seg)
        else:
            turns.append([seg])
    used_ids: set[str] = set()
    out = ['<div class="kb-transcript">']
    for turn in turns:
        first = turn[0]
        sp = t.speaker(first.speaker)
        name = sp.name if sp else first.speaker
        role = (sp.role if sp and sp.role != "unknown" else None) or model.speaker_role(data.id, name) or "unknown"
        segs_html = []
        for seg in turn:
            anchor = f"t-{int(seg.start)}"
            id_attr = "" if anchor in used_ids else f' id="{anchor}"'
            used_ids.add(anchor)
            segs_html.append(
                f'<span class="kb-seg"{id_attr} data-start="{seg.start:g}" data-end="{seg.end:g}">{one_line(seg.text)}</span>'
            )
        cited: list[Atom] = []
        for seg in turn:
            cited += [a for a in citing.get(seg.id, []) if a not in cited]
        aside = ""
        if cited:
            links = ", ".join(f'<a href="{esc(url(src, atom_src(a)))}">{one_line(a.meta.title)}</a>' for a in cited)
            aside = f'<aside class="kb-cited">Cited by: {links}</aside>'
        out.append(
            f'<div class="kb-turn kb-role--{esc(role)}" data-start="{first.start:g}" data-end="{turn[-1].end:g}">'
            f'<div class="kb-turn-head"><a class="kb-time" href="#t={int(first.start)}" data-t="{first.start:g}">'
            f'{stamp(first.start)}</a> <span class="kb-speaker">{one_line(name)}</span> '
            f'<span class="kb-role">{esc(role)}</span></div>'
            f'<p class="kb-turn-text">{" ".join(segs_html)}</p>{aside}</div>'
        )
    out.append("</div>")
    parts += [TRANSCRIPT_SLOT, ""]
    return "\n".join(parts), "\n".join(out)


# ---------------------------------------------------------------------------------------------
# sanitising rendered HTML

_CLEANER = None


def sanitise(fragment: str) -> str:
    """Remove script, event handlers, ``javascript:`` URLs and unknown tags from rendered HTML."""
    global _CLEANER
    if _CLEANER is None:
        try:
            import nh3
        except ImportError:  # pragma: no cover - part of the site extra
            from pipeline.errors import MissingDependencyError

            raise MissingDependencyError("nh3", "site", "Sanitising the review site's pages") from None
        tags = set(nh3.ALLOWED_TAGS) | {"audio", "source", "aside", "section", "figure", "figcaption", "mark", "time"}
        attributes = {
            "*": {"class", "id", "title", "lang", "dir", "role"},
            "a": {"href", "name"},
            "img": {"src", "alt", "width", "height", "loading"},
            "audio": {"src", "controls", "preload"},
            "source": {"src", "type"},
            "th": {"style", "colspan", "rowspan", "align"},
            "td": {"style", "colspan", "rowspan", "align"},
            "ol": {"start", "type"},
            "code": {"class"},
            "details": {"open"},
        }
        kwargs = dict(
            tags=tags,
            clean_content_tags={"script", "style"},
            attributes=attributes,
            link_rel=None,
            generic_attribute_prefixes={"data-", "aria-"},
            url_schemes={"http", "https", "mailto"},
            filter_style_properties={"text-align"},
            strip_comments=False,
        )
        cleaner_cls = getattr(nh3, "Cleaner", None)
        _CLEANER = cleaner_cls(**kwargs).clean if cleaner_cls else (lambda h: nh3.clean(h, **kwargs))
    return _CLEANER(fragment)


# ---------------------------------------------------------------------------------------------
# the hooks


def assets_dir() -> Path:
    return Path(str(resources.files("pipeline") / "templates" / "site"))


class SiteHooks:
    """mkdocs event handlers. ``kb site`` registers an instance with its settings and findings."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        settings: Settings | None = None,
        findings: Sequence[Any] | None = None,
        strict: bool = True,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self.findings = findings
        self.strict = strict
        self.model: SiteModel | None = None
        self.generated: dict[str, str] = {}  # src_uri -> Markdown we generated
        self.slots: dict[str, str] = {}  # src_uri -> HTML put in place of TRANSCRIPT_SLOT
        self.sanitised: set[str] = set()
        self.edit_urls: dict[str, str | None] = {}
        self.links: list[tuple[Path, Path]] = []  # (source media, dest in site) for media: link

    # config ------------------------------------------------------------------------------
    def on_config(self, config: Any) -> Any:
        if self.workspace is None:
            self.workspace = Workspace.at(Path(config.config_file_path).parent)
        if self.settings is None:
            self.settings = Settings.load(self.workspace.root)
        for asset in ASSETS:
            target = config.extra_css if asset.endswith(".css") else config.extra_javascript
            if asset not in [str(x) for x in target]:
                target.append(asset)
        polyfills = config.extra.get("polyfills") or []
        if any("iframe-worker" in str(p) for p in polyfills):
            config.extra["polyfills"] = [SHIM if "iframe-worker" in str(p) else p for p in polyfills]
        if not any(isinstance(e, str) and e.endswith("attr_list") for e in config.markdown_extensions):
            config.markdown_extensions.append("attr_list")
        return config

    # files -------------------------------------------------------------------------------
    def on_files(self, files: Any, config: Any) -> Any:
        from mkdocs.structure.files import File

        assert self.workspace is not None and self.settings is not None
        model = self.model = SiteModel.load(self.workspace)
        for problem in model.problems:
            if self.strict:
                raise InputError(
                    problem.message,
                    "Fix the file (kb check shows every problem), or build anyway with 'kb site --no-strict'.",
                    path=problem.path,
                    line=problem.line,
                )
            log.warning("kb: skipped %s", problem)
        self.generated.clear()
        self.slots.clear()
        self.links.clear()

        def add(src_uri: str, *, content: str | None = None, abs_src_path: str | None = None) -> Any:
            old = files.get_file_from_path(src_uri)
            if old is not None:
                files.remove(old)
            f = (
                File.generated(config, src_uri, content=content)
                if content is not None
                else File.generated(config, src_uri, abs_src_path=abs_src_path)
            )
            files.append(f)
            return f

        site = assets_dir()
        for asset in (*ASSETS, SHIM):
            add(asset, abs_src_path=str(site / "assets" / Path(asset).name))

        # create every page file first (empty), so URLs between them can be computed
        atom_srcs = {a.meta.id: atom_src(a) for a in model.atoms}
        page_srcs = [*atom_srcs.values(), *(interview_src(i) for i in model.interviews)]
        tags_listing = any(k in config.plugins for k in ("material/tags", "tags"))
        indexes = index_pages(model, self.findings, tags_listing=tags_listing)
        if files.get_file_from_path("index.md") is None:
            indexes["index.md"] = home_page(model)
        placeholders = {src: add(src, content="") for src in [*page_srcs, *indexes]}

        media: dict[str, str] = {}
        mode = self.settings.site.media
        for iid, data in model.interviews.items():
            if data.recording is None or mode == "none":
                continue
            dest = f"interviews/{iid}/{data.recording.name}"
            if mode == "copy":
                add(dest, abs_src_path=str(data.recording))
            else:
                self.links.append((data.recording, Path(config.site_dir) / dest))
            media[iid] = dest

        def url(from_src: str, to_src: str) -> str:
            src_file = placeholders.get(from_src) or files.get_file_from_path(from_src)
            target = placeholders.get(to_src) or files.get_file_from_path(to_src)
            if target is None:  # media linked after the build
                from mkdocs.utils import get_relative_url

                return get_relative_url(to_src, src_file.url)
            return target.url_relative_to(src_file)

        for atom in model.atoms:
            src = atom_srcs[atom.meta.id]
            edit = self._edit_url(model.rel_paths[atom.meta.id])
            self.edit_urls[src] = edit
            self.generated[src] = atom_page(model, atom, url, edit)
        for iid, data in model.interviews.items():
            self.generated[interview_src(iid)], self.slots[interview_src(iid)] = transcript_page(
                model, data, url, media.get(iid)
            )
        self.generated.update(indexes)
        for src, text in self.generated.items():
            placeholders[src].content_string = text
        self.sanitised = set(self.generated) - {TAGS_PAGE}
        if config.nav is None:
            config.nav = self._nav(model, files)
        return files

    def _edit_url(self, rel_path: str) -> str | None:
        assert self.settings is not None
        base = self.settings.site.repo_url
        if not base:
            return None
        return base.rstrip("/") + "/" + self.settings.site.edit_uri.strip("/") + "/" + rel_path

    def _nav(self, model: SiteModel, files: Any) -> list:
        """Home, review queue, coverage, browse, interviews, atoms by type, then the user's own pages."""
        nav: list = [{"Home": "index.md"}, {"Review queue": QUEUE_PAGE}, {"Coverage": COVERAGE_PAGE}]
        nav.append({"Browse": [BY_TYPE_PAGE, TAGS_PAGE, BY_INTERVIEW_PAGE, BY_EXPERT_PAGE]})
        nav.append({"Interviews": [INTERVIEWS_PAGE, *(interview_src(i) for i in sorted(model.interviews))]})
        by_type: dict[str, list[Atom]] = defaultdict(list)
        for atom in model.atoms:
            by_type[atom.meta.type].append(atom)
        atoms_nav = [{TYPE_LABELS[t]: [atom_src(a) for a in _sorted(by_type[t])]} for t in ATOM_TYPES if by_type.get(t)]
        if atoms_nav:
            nav.append({"Atoms": atoms_nav})
        listed = {
            "index.md",
            QUEUE_PAGE,
            COVERAGE_PAGE,
            BY_TYPE_PAGE,
            TAGS_PAGE,
            BY_INTERVIEW_PAGE,
            BY_EXPERT_PAGE,
            INTERVIEWS_PAGE,
        }
        listed |= set(self.generated)
        for f in files.documentation_pages():
            if f.src_uri not in listed:
                nav.append(f.src_uri)
        return nav

    # pages -------------------------------------------------------------------------------
    def on_page_markdown(self, markdown: str, page: Any, config: Any, files: Any) -> str:
        src = page.file.src_uri
        if src in self.generated:
            page.edit_url = self.edit_urls.get(src)
        return markdown

    def on_page_content(self, html_text: str, page: Any, config: Any, files: Any) -> str:
        src = page.file.src_uri
        if src in self.slots:
            html_text = html_text.replace(TRANSCRIPT_SLOT, self.slots[src], 1)
        if src in self.sanitised:
            return sanitise(html_text)
        return html_text

    def on_post_build(self, config: Any) -> None:
        for source, dest in self.links:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists() or dest.is_symlink():
                dest.unlink()
            os.symlink(source.resolve(), dest)

    def summary(self) -> dict[str, int]:
        model = self.model
        return {
            "atoms": len(model.atoms) if model else 0,
            "interviews": len(model.interviews) if model else 0,
            "pages": len(self.generated),
        }


# ---------------------------------------------------------------------------------------------
# module-level hooks: `hooks: [pipeline/stages/site_hooks.py]` in a plain mkdocs.yml

_default = SiteHooks()


def on_config(config: Any) -> Any:
    return _default.on_config(config)


def on_files(files: Any, config: Any) -> Any:
    return _default.on_files(files, config)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return _default.on_page_markdown(markdown, page, config, files)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _default.on_page_content(html, page, config, files)


def on_post_build(config: Any) -> None:
    _default.on_post_build(config)


__all__ = ["SiteHooks", "SiteModel", "index_pages", "sanitise", "esc", "md"]
