"""The knowledge-base tools: search, get_atom, ask, get_source, find_error, list_facets.

All read-only, all over the loaded index in ``ToolContext.index`` (a bundle). Outputs are typed
so MCP publishes output schemas and agent loops get stable shapes. A filter value the bundle does
not have is a ``ToolError`` naming the closest values that exist, so a model (or a person) can fix
its call instead of getting an empty list.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.tools.registry import ToolContext, ToolError, tool

# --------------------------------------------------------------------------------------------
# shared shapes


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Citation(BaseModel):
    """An atom and the sources it rests on (interview moments or document sections): ``/v1/ask``'s shape."""

    atom_id: str
    title: str
    sources: list[dict[str, Any]] = Field(default_factory=list)


class Facets(BaseModel):
    types: dict[str, int]
    statuses: dict[str, int]
    tags: dict[str, int]
    interviews: dict[str, int] = Field(description="Interviews cited by atoms -> transcript segments in the bundle.")
    atoms: int


# --------------------------------------------------------------------------------------------
# helpers


def facets_of(bundle: Any) -> Facets:
    types: dict[str, int] = {}
    statuses: dict[str, int] = {}
    tags: dict[str, int] = {}
    for atom_id in bundle.atom_ids:
        atom = bundle.atom(atom_id) or {}
        types[atom.get("type", "")] = types.get(atom.get("type", ""), 0) + 1
        statuses[atom.get("status", "")] = statuses.get(atom.get("status", ""), 0) + 1
        for tag in atom.get("tags") or []:
            tags[tag] = tags.get(tag, 0) + 1
    interviews = {i: len(bundle.segments(i)) for i in bundle.interviews()} if hasattr(bundle, "interviews") else {}
    return Facets(
        types=dict(sorted(types.items())),
        statuses=dict(sorted(statuses.items())),
        tags=dict(sorted(tags.items())),
        interviews=interviews,
        atoms=len(bundle.atom_ids),
    )


def close_matches(value: str, choices: list[str], limit: int = 3) -> list[str]:
    from rapidfuzz import fuzz, process

    found = process.extract(value, choices, scorer=fuzz.WRatio, limit=limit, score_cutoff=50)
    return [m[0] for m in found]


def unknown(what: str, value: str, choices: list[str], listing: str) -> ToolError:
    near = close_matches(value, choices)
    if near:
        hint = f"did you mean {', '.join(repr(c) for c in near)}?"
    elif len(choices) <= 12:
        hint = f"the values here are: {', '.join(repr(c) for c in choices) or '(none)'}"
    else:
        hint = f"see {listing} for the values that exist"
    return ToolError(f"unknown {what} {value!r}", hint=hint)


def _check_filters(bundle: Any, filters: dict[str, list[str]]) -> None:
    facets = facets_of(bundle)
    known = {"type": list(facets.types), "status": list(facets.statuses), "tag": list(facets.tags)}
    for name, values in filters.items():
        for v in values:
            if v not in known[name]:
                raise unknown(name, v, known[name], "list_facets")


def need_atom(bundle: Any, atom_id: str) -> dict[str, Any]:
    atom = bundle.atom(atom_id)
    if atom is None:
        raise unknown("atom id", atom_id, bundle.atom_ids, "search")
    return atom


def _answering() -> Any:
    """Answering's functions, imported on first use (pipeline.answer)."""
    from types import SimpleNamespace

    from pipeline.answer import answer, describe_source, hit_dict
    from pipeline.textio import clock as timestamp

    return SimpleNamespace(answer=answer, describe_source=describe_source, hit_dict=hit_dict, timestamp=timestamp)


RESOLUTION_SECTIONS = ("How to resolve", "Steps", "Actions", "Tip", "What to do instead", "Resolution")


def resolution_steps(atom: dict[str, Any]) -> list[str]:
    """The atom's "what to do" section as a list of steps (numbered or bulleted items, else sentences)."""
    from pipeline.atoms import parse_body

    sections, _, _ = parse_body(str(atom.get("body") or ""))
    by_name = {s.heading: s.text for s in sections if s.level == 2}
    text = next((by_name[n] for n in RESOLUTION_SECTIONS if by_name.get(n)), "")
    if not text:
        return []
    items = re.findall(r"^\s*(?:\d+[.)]|[-*])\s+(.+(?:\n(?!\s*(?:\d+[.)]|[-*])\s).+)*)", text, re.M)
    if items:
        return [" ".join(i.split()) for i in items]
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s.strip()]


# --------------------------------------------------------------------------------------------
# search


class SearchIn(_In):
    query: str = Field(min_length=1, max_length=2000, description="What to look for, in words.")
    k: int = Field(10, ge=1, le=50, description="How many atoms to return.")
    type: list[str] | None = Field(None, description="Only atoms of these types (list_facets shows them).")
    status: list[str] | None = Field(None, description="Only atoms with these review statuses.")
    tag: list[str] | None = Field(None, description="Only atoms with any of these tags.")


class SearchHit(BaseModel):
    atom_id: str
    title: str
    type: str
    status: str
    score: float
    heading: str | None = Field(None, description="The section or FAQ question that matched best.")
    text: str = Field(description="The matching passage.")
    sources: list[dict[str, Any]] = Field(default_factory=list)


class SearchOut(BaseModel):
    results: list[SearchHit]


@tool("search", input=SearchIn, output=SearchOut, title="Search the knowledge base")
def search(ctx: ToolContext, args: SearchIn) -> SearchOut:
    """Hybrid (semantic + keyword) search over the atoms; one hit per atom, best first, with the matching passage and its sources."""
    bundle = ctx.need_index()
    filters = {k: v for k, v in {"type": args.type, "status": args.status, "tag": args.tag}.items() if v}
    _check_filters(bundle, filters)
    hits = bundle.search(args.query, k=args.k, filters=filters or None)
    out = []
    for h in hits:
        d = _answering().hit_dict(h)
        out.append(
            SearchHit(
                atom_id=d["atom_id"],
                title=d["title"],
                type=d["type"],
                status=d["status"],
                score=round(float(d["score"]), 6),
                heading=(d["passage"] or {}).get("heading"),
                text=str((d["passage"] or {}).get("text") or ""),
                sources=d["sources"],
            )
        )
    return SearchOut(results=out)


# --------------------------------------------------------------------------------------------
# get_atom


class AtomIn(_In):
    atom_id: str = Field(min_length=1, description="The atom's id (its file name), as search returns it.")


class FaqPair(BaseModel):
    question: str
    answer: str


class AtomOut(BaseModel):
    id: str
    title: str
    type: str
    status: str
    summary: str = ""
    tags: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    body: str = Field(description="The atom's Markdown body.")
    faq: list[FaqPair] = Field(default_factory=list)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    resolution: list[str] = Field(default_factory=list, description="The steps of its what-to-do section, if any.")
    path: str | None = None


def atom_out(atom: dict[str, Any]) -> AtomOut:
    return AtomOut(
        id=atom["id"],
        title=str(atom.get("title", "")),
        type=str(atom.get("type", "")),
        status=str(atom.get("status", "")),
        summary=str(atom.get("summary") or ""),
        tags=list(atom.get("tags") or []),
        related=[str(r) for r in atom.get("related") or []],
        body=str(atom.get("body") or ""),
        faq=[FaqPair(**p) for p in atom.get("faq") or []],
        sources=list(atom.get("sources") or []),
        resolution=resolution_steps(atom),
        path=atom.get("path"),
    )


@tool("get_atom", input=AtomIn, output=AtomOut, title="Get one atom")
def get_atom(ctx: ToolContext, args: AtomIn) -> AtomOut:
    """One atom in full: front matter, Markdown body, FAQ pairs, sources and its resolution steps."""
    return atom_out(need_atom(ctx.need_index(), args.atom_id))


# --------------------------------------------------------------------------------------------
# ask


class AskIn(_In):
    question: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50, description="Atoms to retrieve.")


class AskOut(BaseModel):
    answer: str
    uncertain: bool = Field(description="True when the knowledge base gives weak or no evidence for the answer.")
    citations: list[Citation] = Field(description="Atom -> sources (interview, speaker, second), as /v1/ask.")
    drafts: list[str] = Field(default_factory=list, description="Cited atoms that are not reviewed yet (draft).")
    evidence: float = 0.0
    mode: Literal["extractive", "llm"] = "extractive"


@tool("ask", input=AskIn, output=AskOut, title="Ask the knowledge base")
def ask(ctx: ToolContext, args: AskIn) -> AskOut:
    """A cited answer from the knowledge base, or "I don't know" with uncertain=true; citations go down to the interview, speaker and second."""
    bundle = ctx.need_index()
    ans = _answering()
    threshold, stats = ctx.extras.get("threshold"), ctx.extras.get("stats")
    if threshold is None:  # the same per-index calibration /v1/ask uses, made once per loaded index
        threshold, stats = _calibrated(bundle, ctx.settings)
    result = ans.answer(
        bundle,
        args.question,
        ctx.settings,
        llm=ctx.extras.get("llm"),
        k=args.k,
        threshold=threshold,
        stats=stats,
    )
    return ask_out(bundle, result)


_CALIBRATED: dict[int, tuple[Any, float, Any]] = {}


def _calibrated(index: Any, settings: Any) -> tuple[float, Any]:
    """(threshold, term statistics) of ``index``, calibrated on first use and kept while it is loaded."""
    hit = _CALIBRATED.get(id(index))
    if hit is not None and hit[0] is index:
        return hit[1], hit[2]
    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats

    stats = TermStats.of(index)
    threshold = calibrate(index, settings, stats).threshold
    _CALIBRATED.clear()  # one index at a time: a reloaded one replaces the old
    _CALIBRATED[id(index)] = (index, threshold, stats)
    return threshold, stats


def ask_out(bundle: Any, result: Any) -> AskOut:
    drafts = [c["atom_id"] for c in result.citations if (bundle.atom(c["atom_id"]) or {}).get("status") == "draft"]
    return AskOut(
        answer=result.answer,
        uncertain=bool(result.uncertain),
        citations=[Citation(**c) for c in result.citations],
        drafts=drafts,
        evidence=round(float(result.evidence), 6),
        mode=result.mode,
    )


# --------------------------------------------------------------------------------------------
# get_source


class SourceIn(_In):
    atom_id: str = Field(min_length=1, description="The cited atom.")
    source: int = Field(0, ge=0, description="Which of the atom's sources (0 = the first, as citations list them).")


class Segment(BaseModel):
    id: int
    start: float
    end: float
    speaker: str
    speaker_name: str
    role: str
    text: str
    cited: bool = Field(description="True for segments inside the cited range; the others are context.")


class SourceOut(BaseModel):
    atom_id: str
    kind: Literal["interview", "document", "other"]
    source: dict[str, Any] = Field(description="The source as the atom records it.")
    interview: str | None = None
    speaker: str | None = None
    start: float | None = None
    end: float | None = None
    timestamp: str | None = Field(None, description="hh:mm:ss-hh:mm:ss of the cited range.")
    excerpt: str = Field("", description="The transcript around the cited range, one line per turn.")
    segments: list[Segment] = Field(default_factory=list)
    note: str = ""


@tool("get_source", input=SourceIn, output=SourceOut, title="Get the source behind a citation")
def get_source(ctx: ToolContext, args: SourceIn) -> SourceOut:
    """The transcript excerpt behind a citation (who said what, when), or the document section it came from."""
    bundle = ctx.need_index()
    atom = need_atom(bundle, args.atom_id)
    sources = atom.get("sources") or []
    if not sources:
        raise ToolError(
            f"atom {args.atom_id!r} records no sources", hint="it cannot be traced to an interview or a document"
        )
    if args.source >= len(sources):
        raise ToolError(
            f"atom {args.atom_id!r} has {len(sources)} source(s); there is no source {args.source}",
            hint=f"use source 0..{len(sources) - 1}",
        )
    src = dict(sources[args.source])
    if "interview" not in src:
        kind: Literal["interview", "document", "other"] = "document" if "document" in src else "other"
        return SourceOut(atom_id=args.atom_id, kind=kind, source=src, note=_answering().describe_source(src))
    start, end = float(src.get("start") or 0.0), float(src.get("end") or src.get("start") or 0.0)
    rows = bundle.segments(str(src["interview"])) if hasattr(bundle, "segments") else []
    segs = [Segment(**r, cited=(r["end"] > start and r["start"] < end) or r["start"] == start) for r in rows]
    near = _around(segs)
    ts = _answering().timestamp
    excerpt = "\n".join(f"[{ts(s.start)}] {s.speaker_name} ({s.role}): {s.text}" for s in near)
    note = "" if near else "the bundle holds no transcript segments for this interview (no transcript.json at export)"
    return SourceOut(
        atom_id=args.atom_id,
        kind="interview",
        source=src,
        interview=str(src["interview"]),
        speaker=src.get("speaker"),
        start=start,
        end=end,
        timestamp=f"{ts(start)}-{ts(end)}",
        excerpt=excerpt,
        segments=near,
        note=note,
    )


def _around(segs: list[Segment]) -> list[Segment]:
    """The cited segments and their immediate neighbours (the bundle keeps one on either side)."""
    idx = [i for i, s in enumerate(segs) if s.cited]
    if not idx:
        return []
    lo, hi = max(0, idx[0] - 1), min(len(segs), idx[-1] + 2)
    return segs[lo:hi]


# --------------------------------------------------------------------------------------------
# find_error


class FindErrorIn(_In):
    message: str = Field(min_length=1, max_length=4000, description="The error message or log line, verbatim.")
    limit: int = Field(5, ge=1, le=20)
    min_score: float = Field(70.0, ge=0, le=100, description="Fuzzy matches below this rapidfuzz score are left out.")


class ErrorMatch(BaseModel):
    atom_id: str
    title: str
    status: str
    score: float = Field(description="100 for an exact match; the rapidfuzz score (0-100) otherwise.")
    match: Literal["exact", "fuzzy"]
    matched: str = Field(description="The atom text the message matched.")
    resolution: list[str] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)


class FindErrorOut(BaseModel):
    matches: list[ErrorMatch]
    covered: bool = Field(
        description="False when no error atom matches: an uncovered error (a question for the next interview)."
    )


_MASK = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+(?:\.\d+)*", re.I)


def _norm(text: str) -> str:
    return " ".join(_MASK.sub("<n>", text.lower()).replace("'", "").replace('"', "").split())


def error_texts(atom: dict[str, Any]) -> list[str]:
    """The strings an error atom is known by: its title, quoted messages in it, code lines, summary."""
    title = str(atom.get("title") or "")
    out = [title, re.sub(r"^[\w .-]{2,24}:\s+", "", title)]
    out += re.findall(r"['\"`‘“]([^'\"`’”]{6,})['\"`’”]", title)
    body = str(atom.get("body") or "")
    out += re.findall(r"`([^`\n]{8,})`", body)
    for block in re.findall(r"```[^\n]*\n(.*?)```", body, re.S):
        out += [ln.strip() for ln in block.splitlines() if len(ln.strip()) >= 8]
    return [t for t in dict.fromkeys(out) if t.strip()]


def find_errors(bundle: Any, message: str, limit: int = 5, min_score: float = 70.0) -> list[ErrorMatch]:
    """Error atoms whose message matches: exact (normalised substring either way) first, then fuzzy."""
    from rapidfuzz import fuzz

    want = _norm(message)
    found: list[tuple[float, int, ErrorMatch]] = []
    for atom_id in bundle.atom_ids:
        atom = bundle.atom(atom_id) or {}
        if atom.get("type") != "error":
            continue
        best: tuple[float, str, str] = (0.0, "", "fuzzy")
        for text in error_texts(atom):
            t = _norm(text)
            if len(t) >= 6 and (t in want or (len(want) >= 6 and want in t)):
                best = max(best, (100.0, text, "exact"))
                continue
            score = float(fuzz.partial_ratio(t, want)) if min(len(t), len(want)) >= 6 else 0.0
            best = max(best, (score, text, "fuzzy"))
        if best[0] >= min_score:
            cites = [
                Citation(atom_id=atom_id, title=str(atom.get("title", "")), sources=list(atom.get("sources") or []))
            ]
            m = ErrorMatch(
                atom_id=atom_id,
                title=str(atom.get("title", "")),
                status=str(atom.get("status", "")),
                score=round(best[0], 2),
                match=best[2],  # type: ignore[arg-type]  # best[2] is the matched pattern's kind, one of ErrorMatch's literals
                matched=best[1],
                resolution=resolution_steps(atom),
                citations=cites,
            )
            found.append((best[0], 0 if best[2] == "exact" else 1, m))
    found.sort(key=lambda x: (x[1], -x[0], x[2].atom_id))
    return [m for _, _, m in found[:limit]]


@tool("find_error", input=FindErrorIn, output=FindErrorOut, title="Find the error atom for a message")
def find_error(ctx: ToolContext, args: FindErrorIn) -> FindErrorOut:
    """Error atoms matching an error message or log line: exact first (numbers and ids masked), then fuzzy (rapidfuzz), with resolution steps and citations."""
    matches = find_errors(ctx.need_index(), args.message, args.limit, args.min_score)
    return FindErrorOut(matches=matches, covered=bool(matches))


# --------------------------------------------------------------------------------------------
# list_facets


class FacetsIn(_In):
    pass


@tool("list_facets", input=FacetsIn, output=Facets, title="List types, statuses and tags")
def list_facets(ctx: ToolContext, args: FacetsIn) -> Facets:
    """The atom types, review statuses and tags in the knowledge base with their counts (the values search filters accept)."""
    return facets_of(ctx.need_index())
