"""Body rules of ``kb check``: required sections, FAQ pairs, config blocks and length."""

from __future__ import annotations

from typing import Any

from pipeline import atoms
from pipeline.models import TYPE_SECTIONS
from pipeline.stages.check.configs import check_configs
from pipeline.stages.check.context import CheckContext
from pipeline.stages.check.scan import norm_heading, scan


def check_body(ctx: CheckContext, raw: atoms.RawAtom, data: dict, atype: str | None, review_sev: str, add: Any) -> None:
    sections, faq, code = scan(raw.body, raw.body_line)
    last_line = raw.body_line + raw.body.count("\n")
    if raw.body.endswith("\n"):
        last_line -= 1
    if atype is not None:
        have: dict[str, int] = {}
        for s in sections:
            if s.level == 2:
                have.setdefault(norm_heading(s.text), s.line)
        required = TYPE_SECTIONS[atype]
        for i, heading in enumerate(required):
            if norm_heading(heading) in have:
                continue
            after = next((have[norm_heading(h)] for h in required[i + 1 :] if norm_heading(h) in have), None)
            add(
                "missing-section",
                after or max(last_line, raw.body_line),
                f"missing section '## {heading}' (required for type {atype})",
                f"Add '## {heading}' {'before this line' if after else 'at the end'}; "
                f"a {atype} has: {', '.join(required)}.",
                severity=review_sev,
            )
        if "faq" in have and not faq:
            add(
                "faq-empty",
                have["faq"],
                "the FAQ section has no question and answer",
                "Add pairs as '**Q:** question?' then '**A:** answer.'",
                severity=review_sev,
            )
    for pair in faq:
        if not pair.answer.strip():
            add(
                "faq-no-answer",
                pair.line,
                f"question without an answer: '{_short(pair.question)}'",
                "Write '**A:** ...' on the line after the question.",
            )
    if atype == "config-template":
        check_configs(ctx, raw, data, code, review_sev, add)
    words = atoms.word_count(raw.body)
    cs = ctx.cs
    if words > cs.hard_cap_words:
        add(
            "over-cap",
            raw.body_line,
            f"the body has {words} words, above the hard cap of {cs.hard_cap_words}",
            "Split it into atoms of one screen each (400-800 words).",
        )
    elif words > cs.max_words:
        add(
            "too-long",
            raw.body_line,
            f"the body has {words} words, above {cs.max_words}",
            "Keep one atom to one screen: split it, or move detail into a related atom.",
        )
    elif words < cs.min_words:
        add(
            "too-short",
            raw.body_line,
            f"the body has {words} word{'' if words == 1 else 's'}, below {cs.min_words}",
            "Add the context, causes and steps a reader needs, or merge it into a related atom.",
        )


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
