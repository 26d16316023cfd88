"""LLM extraction, one window at a time, with a window cache that makes re-runs resume.

Each window is sent with the versioned prompt; the answer must validate against
``Extraction`` with the transcript in the validation context (grounding in code). When the
model never gets every quote right, its last answer is salvaged item by item: grounded items
are kept, the rest are dropped and reported. Results are cached under
``.kb/distill/windows/<hash>.json`` keyed by window text + prompt version + model + settings,
so an interrupted run resumes and a transcript correction re-sends only the windows it touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline import telemetry
from pipeline.backends.llm import ExtractionError, LlmClient, Usage
from pipeline.backends.llm.tokens import count_tokens
from pipeline.config import Settings
from pipeline.models import TYPE_SECTIONS, Interview, InterviewSource, Transcript
from pipeline.stages.distill.models import Extraction, KnowledgeItem
from pipeline.stages.distill.windows import Window
from pipeline.stages.distill.writer import Draft
from pipeline.workspace import atomic_write_json

PROMPT = "distill-v1"


def prompt_text(name: str = PROMPT) -> str:
    """The versioned system prompt (``pipeline/prompts/<name>.md``) with the type sections filled in."""
    text = resources.files("pipeline").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")
    lines = [
        f"  - {t}: " + (", ".join(h for h in secs if h != "FAQ") or "(no sections; FAQ only)")
        for t, secs in TYPE_SECTIONS.items()
    ]
    return text.replace("{sections}", "\n".join(lines))


def prompt_overhead(settings: Settings) -> int:
    """Tokens a request spends besides the window: prompt, header and the response schema."""
    schema = json.dumps(Extraction.model_json_schema())
    return count_tokens(prompt_text()) + count_tokens(schema) + 200


def window_budget(settings: Settings) -> int:
    room = settings.llm.context_window - prompt_overhead(settings) - settings.llm.max_output_tokens
    return max(256, min(settings.distill.window_tokens, room))


def messages_for(window: Window, transcript: Transcript, interview: Interview | None) -> list[dict[str, Any]]:
    experts = sorted({sp.name for sp in transcript.speakers if sp.role == "expert"})
    others = sorted({sp.name for sp in transcript.speakers if sp.role != "expert"})
    title = interview.title if interview else transcript.interview
    header = (
        f"Interview: {title}\nExperts (quote only them): {', '.join(experts)}\n"
        f"Others (never quote): {', '.join(others) or 'none'}\n\nExcerpt:\n"
    )
    return [{"role": "system", "content": prompt_text()}, {"role": "user", "content": header + window.text}]


@dataclass
class WindowResult:
    items: list[KnowledgeItem] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cached: bool = False


def cache_key(window: Window, settings: Settings) -> str:
    d = settings.distill
    return window.key(PROMPT, settings.llm.model, settings.llm.mode, f"{d.quote_threshold}:{d.quote_slack_s}")


def _context(transcript: Transcript, settings: Settings) -> dict[str, Any]:
    return {
        "transcript": transcript,
        "threshold": settings.distill.quote_threshold,
        "slack_s": settings.distill.quote_slack_s,
    }


def load_cached(cache_dir: Path, key: str, transcript: Transcript) -> WindowResult | None:
    path = cache_dir / f"{key}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = [KnowledgeItem.model_validate(i, context={"lenient": True}) for i in data["items"]]
    except (OSError, ValueError, KeyError, ValidationError):
        return None  # a damaged cache entry is simply redone
    return WindowResult(items, list(data.get("dropped", [])), Usage(**data.get("usage", {})), cached=True)


def extract_window(
    client: LlmClient,
    window: Window,
    transcript: Transcript,
    interview: Interview | None,
    settings: Settings,
    cache_dir: Path,
) -> WindowResult:
    """Items of one window (from the cache when present). Raises BackendError/BudgetExceededError."""
    key = cache_key(window, settings)
    hit = load_cached(cache_dir, key, transcript)
    if hit is not None:
        return hit
    messages = messages_for(window, transcript, interview)
    result = WindowResult()
    attrs = {
        "kb.interview": transcript.interview,
        "kb.window.index": window.index,
        "gen_ai.request.model": client.model,
    }
    with telemetry.span(f"distill window {window.index}", **attrs) as span:
        try:
            try:
                extraction, usage = client.extract(
                    Extraction, messages, validation_context=_context(transcript, settings)
                )
                result.items, result.usage = list(extraction.items), usage
            except ExtractionError as exc:
                result.usage = exc.usage
                salvaged = salvage(exc.raw, transcript, settings, exc.errors)
                if salvaged is None:  # nothing usable: not cached, so a re-run asks again
                    raise
                result.items, result.dropped = salvaged
        finally:  # the window's span carries the sum of its attempts (the children are the attempts)
            u = result.usage
            span.set_attributes(
                {
                    "gen_ai.usage.input_tokens": u.tokens_in,
                    "gen_ai.usage.output_tokens": u.tokens_out,
                    "kb.llm.requests": u.requests,
                    "kb.llm.reasks": u.reasks,
                    "kb.llm.cost_usd": round(u.cost_usd, 8),
                    "kb.distill.items": len(result.items),
                }
            )
    atomic_write_json(
        cache_dir / f"{key}.json",
        {
            "window": window.index,
            "interview": transcript.interview,
            "items": [i.model_dump(mode="json") for i in result.items],
            "dropped": result.dropped,
            "usage": result.usage.__dict__,
        },
    )
    return result


def salvage(
    raw: str | None, transcript: Transcript, settings: Settings, errors: str
) -> tuple[list[KnowledgeItem], list[str]] | None:
    """Keep the grounded, well-formed items of an answer that failed validation as a whole.

    None when the answer is not a list of items at all (invalid JSON, wrong shape).
    """
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return None
    candidates = data.get("items") if isinstance(data, dict) else None
    if not isinstance(candidates, list):
        return None
    kept: list[KnowledgeItem] = []
    dropped: list[str] = []
    ctx = _context(transcript, settings)
    for n, cand in enumerate(candidates):
        title = cand.get("title", f"item {n + 1}") if isinstance(cand, dict) else f"item {n + 1}"
        try:
            kept.append(KnowledgeItem.model_validate(cand, context=ctx))
        except ValidationError as exc:
            err = exc.errors()[0]
            dropped.append(f"{title!r}: {err['msg'].removeprefix('Value error, ')}")
    return kept, dropped


def to_draft(item: KnowledgeItem, interview_id: str, settings: Settings, share: Usage) -> Draft:
    """A grounded item as a draft atom; its FAQ answers keep only pairs whose evidence exists."""
    sources = [
        InterviewSource(
            interview=interview_id, speaker=e.speaker, start=round(e.start, 2), end=round(e.end, 2), quote=e.quote
        )
        for e in item.evidence
    ]
    return Draft(
        type=item.type,
        title=item.title.strip(),
        summary=item.summary.strip(),
        context=item.context.strip(),
        sections=[(s.heading.strip(), s.text.strip()) for s in item.sections if s.heading.strip() != "FAQ"],
        faq=[(q.question.strip(), q.answer.strip()) for q in item.faq],
        tags=[t.lower() for t in item.tags],
        prerequisites=item.prerequisites,
        related=item.related,
        sources=sources,
        kind="llm",
        model=settings.llm.model,
        prompt=PROMPT,
        tokens_in=share.tokens_in,
        tokens_out=share.tokens_out,
        cost_usd=share.cost_usd,
    )


def split_usage(usage: Usage, n: int) -> Usage:
    """A window's usage shared evenly among its items (what each atom is charged)."""
    if n <= 0:
        return Usage()
    return Usage(tokens_in=usage.tokens_in // n, tokens_out=usage.tokens_out // n, cost_usd=usage.cost_usd / n)
