"""Citations: a hit as JSON, an atom and the sources its answer rests on, and how a person reads them."""

from __future__ import annotations

from typing import Any


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


def citation(hit: Any, focus: str = "") -> dict[str, Any]:
    """The atom and its sources, the ones ``focus`` (the question and the text used) rests on first."""
    h = hit_dict(hit)
    return {"atom_id": h["atom_id"], "title": h["title"], "sources": rank_sources(h["sources"], focus)}


def rank_sources(sources: list[dict[str, Any]], focus: str) -> list[dict[str, Any]]:
    """Order an atom's sources by how well their heading or quote matches ``focus`` (stable)."""
    if len(sources) < 2 or not focus:
        return list(sources)
    from rapidfuzz import fuzz

    def score(src: dict[str, Any]) -> float:
        key = str(src.get("quote") or src.get("heading") or "")
        return fuzz.partial_ratio(key.lower(), focus.lower()) if key else 0.0

    scores = [score(src) for src in sources]
    order = sorted(range(len(sources)), key=lambda i: -scores[i])
    return [sources[i] for i in order]


def timestamp(seconds: float) -> str:
    s = int(round(float(seconds)))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


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
            f"(interview {source['interview']}, {timestamp(source.get('start', 0))}-{timestamp(source.get('end', 0))})"
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
