"""LLM-grounded answers: the retrieved atoms go to the model, which must cite them by id."""

from __future__ import annotations

import re
from typing import Any

from pipeline.answer.citations import citation, hit_dict
from pipeline.answer.extractive import clip
from pipeline.answer.model import IDK, Answer, BundleLike

CITATION_RE = re.compile(r"\[([a-z0-9][a-z0-9-]{0,119})\]")
LLM_CONTEXT_ATOMS = 4
LLM_ATOM_CHARS = 2500

SYSTEM_PROMPT = """You answer questions for engineers using ONLY the knowledge atoms below.
Each atom starts with its id in square brackets. Rules:
- Use only facts stated in the atoms. Do not add anything from your own knowledge.
- Cite every sentence with the id of the atom it comes from, in square brackets, e.g. [some-atom-id].
- If the atoms do not answer the question, say "I don't know" and cite nothing.
- Be brief: a few sentences or a short list of steps."""


def build_messages(bundle: BundleLike, question: str, hits: list[Any]) -> list[dict[str, str]]:
    blocks = []
    for hit in hits[:LLM_CONTEXT_ATOMS]:
        h = hit_dict(hit)
        atom = bundle.atom(h["atom_id"]) or {}
        body = str(atom.get("body") or (h.get("passage") or {}).get("text") or "")
        summary = str(atom.get("summary") or (atom.get("meta") or {}).get("summary") or "")
        text = f"[{h['atom_id']}] {h['title']} ({h['type']})\n{summary}\n\n{clip(body.strip(), LLM_ATOM_CHARS)}"
        blocks.append(text.strip())
    context = "\n\n---\n\n".join(blocks)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Knowledge atoms:\n\n{context}\n\n---\n\nQuestion: {question}"},
    ]


def llm_answer(bundle: BundleLike, question: str, hits: list[Any], llm: Any) -> Answer:
    shown = {hit_dict(h)["atom_id"]: h for h in hits[:LLM_CONTEXT_ATOMS]}
    result = llm.chat(build_messages(bundle, question, hits))
    text = (result.text or "").strip()
    cited = list(dict.fromkeys(CITATION_RE.findall(text)))
    grounded = [c for c in cited if c in shown]
    invented = [c for c in cited if c not in shown]
    tokens = {"tokens_in": int(result.tokens_in or 0), "tokens_out": int(result.tokens_out or 0)}
    if not grounded:
        return Answer(IDK, True, [], mode="llm", reason="the model's answer cites no retrieved atom", **tokens)
    reason = f"the model cited atoms it was not given: {', '.join(invented)}" if invented else ""
    focus = question + " " + text
    return Answer(
        text, bool(invented), [citation(shown[c], focus) for c in grounded], mode="llm", reason=reason, **tokens
    )
