"""``related`` titles of ``kb check``: each must name an atom; the nearest titles are suggested."""

from __future__ import annotations

from rapidfuzz import fuzz, process, utils

from pipeline.findings import ERROR, Finding
from pipeline.stages.check.context import AtomInfo, CheckContext


def _title_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def unresolved_related(ctx: CheckContext, infos: list[AtomInfo]) -> list[Finding]:
    titles: dict[str, str] = {}
    ids: set[str] = set()
    for info in infos:
        if info.title:
            titles.setdefault(_title_key(info.title), info.title)
        if info.id:
            ids.add(info.id)
    choices = list(titles.values())
    out = []
    for info in infos:
        if not info.checked:
            continue
        for title, line in info.related:
            if _title_key(title) in titles or title.strip() in ids:
                continue
            best = process.extract(
                title,
                choices,
                scorer=fuzz.WRatio,
                processor=utils.default_process,
                limit=3,
                score_cutoff=ctx.cs.related_threshold,
            )
            names = [b[0] for b in best if b[0] != info.title]
            hint = (
                ("Did you mean " + " or ".join(f"'{n}'" for n in names) + "?")
                if names
                else "No atom has a similar title; write the atom first, or remove the entry."
            )
            out.append(
                Finding(
                    info.rel, line, None, ERROR, "related-unresolved", f"related title '{title}' matches no atom", hint
                )
            )
    return out
