"""What the LLM must return, as pydantic models whose validators enforce grounding.

The validation context carries the transcript: every evidence quote is checked with
``verify_quote`` (the named speaker, an expert, said it in the cited seconds). A failing quote
raises with the reason, so instructor re-asks the model with that reason. With
``{"lenient": True}`` in the context the same models parse without grounding, so a last answer
that never validated can be salvaged item by item (ungrounded items are dropped and reported).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from pipeline.models import TYPE_SECTIONS, AtomType
from pipeline.transcripts.grounding import verify_quote

ItemType = AtomType  # the LLM may propose atoms of every type


def _ctx(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


class Evidence(BaseModel):
    """A verbatim quote of an expert, with the seconds of the turn it comes from."""

    speaker: str = Field(description="The expert's name exactly as in the excerpt.")
    start: float = Field(ge=0, description="Start second of the quoted turn.")
    end: float = Field(ge=0, description="End second of the quoted turn.")
    quote: str = Field(min_length=1, description="The expert's exact words, copied verbatim.")

    @model_validator(mode="after")
    def _grounded(self, info: ValidationInfo) -> Evidence:
        ctx = _ctx(info)
        transcript = ctx.get("transcript")
        if transcript is None or ctx.get("lenient"):
            return self
        g = verify_quote(
            transcript,
            self.speaker,
            min(self.start, self.end),
            max(self.start, self.end),
            self.quote,
            threshold=ctx.get("threshold", 90.0),
            slack_s=ctx.get("slack_s", 5.0),
        )
        if not g.ok:
            raise ValueError(f"quote {self.quote[:60]!r} is not grounded: {g.reason}")
        # timestamps refined from word timings
        self.start, self.end = float(g.start or self.start), float(g.end or self.end)
        return self


class SectionText(BaseModel):
    heading: str
    text: str = Field(min_length=1)


class QA(BaseModel):
    question: str = Field(min_length=3)
    answer: str = Field(min_length=1)
    evidence: int = Field(0, ge=0, description="Index into the item's evidence that supports the answer.")


class KnowledgeItem(BaseModel):
    type: ItemType
    title: str = Field(min_length=3, max_length=140)
    summary: str = Field(min_length=1)
    context: str = ""
    sections: list[SectionText] = Field(default_factory=list)
    faq: list[QA] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    prerequisites: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(min_length=1)

    @field_validator("tags", "prerequisites", "related")
    @classmethod
    def _clean(cls, items: list[str]) -> list[str]:
        return [s.strip() for s in items if s and s.strip()]

    @model_validator(mode="after")
    def _shape(self, info: ValidationInfo) -> KnowledgeItem:
        if _ctx(info).get("lenient"):
            return self
        wanted = [h for h in TYPE_SECTIONS[self.type] if h != "FAQ"]
        have = {s.heading.strip().lower() for s in self.sections}
        missing = [h for h in wanted if h.lower() not in have]
        if missing:
            raise ValueError(
                f"item {self.title!r} of type {self.type} lacks section(s) {', '.join(missing)}; "
                f"its sections are: {', '.join(wanted) or 'none besides FAQ'}"
            )
        if self.type == "config-template":
            template = next(s.text for s in self.sections if s.heading.strip().lower() == "template")
            problem = _config_problem(template)
            if problem:
                raise ValueError(f"item {self.title!r}: the Template section {problem}")
        for qa in self.faq:
            if qa.evidence >= len(self.evidence):
                raise ValueError(
                    f"FAQ answer {qa.question[:50]!r} cites evidence {qa.evidence}, "
                    f"but the item has {len(self.evidence)} quote(s) (indexes from 0)"
                )
        return self


_FENCE = re.compile(r"```(yaml|yml|json)[^\n]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def _config_problem(text: str) -> str | None:
    """Why a config template would fail ``kb check`` (no fenced yaml/json block, or one that does not parse)."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return "needs the configuration as a fenced ```yaml or ```json block"
    for lang, body in blocks:
        try:
            json.loads(body) if lang.lower() == "json" else yaml.safe_load(body)
        except (ValueError, yaml.YAMLError) as exc:
            return f"has a {lang} block that does not parse ({str(exc).splitlines()[0]})"
    return None


class Extraction(BaseModel):
    """The knowledge items of one transcript window (an empty list when there are none)."""

    items: list[KnowledgeItem] = Field(default_factory=list)
