"""Citations: the passage an answer's text comes from and the sources it rests on, used one first.

Display goes through one timestamp formatter (``pipeline.textio.clock``: floored to the second),
so the API's text, ``kb ask``, the chat page and the review site read the same ``00:12:34``;
JSON and links carry the exact seconds (``start``/``end`` as stored, ``#t=754.2``).
"""

from __future__ import annotations

from typing import Any

from pipeline.textio import clock, exact_seconds


def hit_dict(hit: Any) -> dict[str, Any]:
    """A search hit as the JSON of ``POST /v1/search``."""
    if isinstance(hit, dict):
        return {k: hit[k] for k in ("atom_id", "title", "type", "status", "score", "passage", "sources")}
    return {
        "atom_id": hit.atom_id,
        "title": hit.title,
        "type": hit.type,
        "status": hit.status,
        "score": float(hit.score),
        "passage": dict(hit.passage),
        "sources": [dict(s) for s in hit.sources],
    }


def citation(hit: Any, focus: str = "", used_heading: str = "") -> dict[str, Any]:
    """The atom, the passage used and its sources, the one the used text rests on first."""
    h = hit_dict(hit)
    passage = h.get("passage") or {}
    heading = used_heading or str(passage.get("heading") or "")
    return {
        "atom_id": h["atom_id"],
        "title": h["title"],
        "passage": {"kind": passage.get("kind", ""), "heading": passage.get("heading", "")},
        "sources": rank_sources(h["sources"], focus, heading),
    }


def rank_sources(sources: list[dict[str, Any]], focus: str, heading: str = "") -> list[dict[str, Any]]:
    """Order sources by how well they match the text used (stable): a source whose heading is the
    used passage's heading (an FAQ pair's question) first, then by fuzzy match of the heading or
    quote against ``focus`` (the question and the answer text)."""
    if len(sources) < 2 or not (focus or heading):
        return list(sources)
    from rapidfuzz import fuzz

    want = heading.strip().lower()

    def score(src: dict[str, Any]) -> float:
        key = str(src.get("quote") or src.get("heading") or "")
        if want and str(src.get("heading") or "").strip().lower() == want:
            return 1000.0
        return fuzz.partial_ratio(key.lower(), focus.lower()) if key and focus else 0.0

    scores = [score(src) for src in sources]
    order = sorted(range(len(sources)), key=lambda i: -scores[i])
    return [sources[i] for i in order]


def short_quote(quote: str, limit: int = 220) -> str:
    """A quote on one line, cut at a word with an ellipsis when long (the API keeps it whole)."""
    text = " ".join(str(quote).split())
    if len(text) <= limit:
        return text
    return text[: text.rfind(" ", 0, limit)].rstrip(" ,;:") + " …"


def describe_source(source: dict[str, Any]) -> str:
    """One line a person can check: who said what, where and when (or which document section)."""
    if "interview" in source:
        quote = short_quote(source.get("quote", ""))
        return (
            f'{source.get("speaker", "?")}: "{quote}" '
            f"(interview {source['interview']}, {clock(source.get('start', 0))}-{clock(source.get('end', 0))})"
        )
    if "document" in source:
        where = f"{source['document']} § {source.get('heading', '')}".rstrip(" §")
        if source.get("line"):
            where += f" (line {source['line']})"
        return where
    return ", ".join(f"{k}: {v}" for k, v in source.items())


def citations_text(citations: list[dict[str, Any]], max_sources: int = 3) -> str:
    """Citations as Markdown lines, for the chat completions answer text."""
    lines = []
    for c in citations:
        lines.append(f"- [{c['atom_id']}] {c['title']}")
        for src in c.get("sources", [])[:max_sources]:
            lines.append(f"  - {describe_source(src)}")
    return "\n".join(lines)


def site_links(citation_: dict[str, Any], atom_path: str | None, site_url: str | None) -> dict[str, Any]:
    """Links into the review site (``serve.site_url``): the atom page and each interview moment."""
    if not site_url:
        return {}
    base = site_url.rstrip("/")
    out: dict[str, Any] = {}
    if atom_path and atom_path.endswith(".md"):
        out["atom_url"] = f"{base}/{atom_path[:-3]}.html"
    moments: list[str | None] = []
    for src in citation_.get("sources", []):
        if "interview" in src:
            moments.append(f"{base}/interviews/{src['interview']}.html#t={exact_seconds(src.get('start', 0))}")
        else:
            moments.append(None)
    if any(moments):
        out["source_urls"] = moments
    return out
