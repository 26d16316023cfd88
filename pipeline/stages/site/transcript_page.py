"""A transcript's page: speakers, the recording's player and every turn, with the atoms citing it."""

from __future__ import annotations

import bisect
from collections import defaultdict

from pipeline.models import Atom, InterviewSource, Transcript
from pipeline.stages.site.markup import UrlFn, atom_src, esc, front_matter, interview_src, md, one_line
from pipeline.stages.site.model import InterviewData, SiteModel
from pipeline.transcripts.markdown import stamp


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
