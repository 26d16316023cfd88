"""``answer(index, question, settings, history=...)``: one cited answer, or an honest "I don't know".

The one function every transport calls (HTTP ``/v1/ask``, the OpenAI-compatible chat, ``kb ask``
and ``kb chat``, the MCP/tool registry). Steps: the follow-up becomes a standalone question
(``conversation.py``); the index is searched (and the hits reordered by ``serve.reranker`` when one is
configured, ``rerank.py``); ``answerability.py`` decides from several signals
whether the knowledge base answers it; then the answer is the best passage verbatim (extractive)
or an LLM's text over the retrieved atoms, which must cite them.

An uncertain answer carries no citations and no atom text: the closest atoms are listed apart,
under ``suggestions``, never as the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline import telemetry
from pipeline.answer.answerability import judge, plain_question, signals
from pipeline.answer.calibrate import DEFAULT_THRESHOLD, RERANK_DEFAULT_THRESHOLD
from pipeline.answer.citations import citation, hit_dict
from pipeline.answer.conversation import IDK, Standalone, parse_history, standalone
from pipeline.answer.index import AnswerIndex, TermStats
from pipeline.answer.rerank import reading_depth, rerank
from pipeline.backends.llm.client import configured as llm_configured  # an endpoint or a key: else extractive
from pipeline.backends.rerank import load_reranker
from pipeline.config import Settings

CITATION_RE = re.compile(r"\[([a-z0-9][a-z0-9-]{0,119})\]")
MAX_ANSWER_CHARS = 1500
LLM_CONTEXT_ATOMS = 4
LLM_ATOM_CHARS = 2500
SUGGESTIONS = 3


@dataclass
class Answer:
    """The typed result of ``answer``; ``to_dict`` is the public JSON of ``POST /v1/ask``."""

    answer: str
    uncertain: bool
    citations: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, str]] = field(default_factory=list)
    answered_question: str = ""
    evidence: float = 0.0  # cosine of the (standalone) question and the best passage
    threshold: float = DEFAULT_THRESHOLD
    mode: str = "extractive"  # extractive | llm
    reason: str = ""  # why uncertain, for logs and --format json
    signals: dict[str, Any] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    llm_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "uncertain": self.uncertain,
            "answered_question": self.answered_question,
            "citations": self.citations,
            "suggestions": self.suggestions,
        }


def answer(
    index: AnswerIndex,
    question: str,
    settings: Settings,
    llm: Any | None = None,
    *,
    history: list[Any] | None = None,
    k: int = 5,
    threshold: float | None = None,
    stats: TermStats | None = None,
) -> Answer:
    """Answer ``question`` (after the earlier turns ``history``) from ``index``.

    ``threshold``: the answerability threshold (``calibrate.calibrate`` measures it per index;
    default: the setting or ``DEFAULT_THRESHOLD``); ``stats``: the index's term statistics
    (computed once per loaded index by the caller; built here when missing).
    """
    question = question.strip()
    reranker = load_reranker(settings)
    if threshold is None:
        default = DEFAULT_THRESHOLD if reranker is None else RERANK_DEFAULT_THRESHOLD
        threshold = settings.serve.uncertain_below if settings.serve.uncertain_below is not None else default
    if llm is None and llm_configured(settings):
        from pipeline.backends.llm import make_client

        llm = make_client(settings)
    stats = stats or TermStats.of(index)
    turns = parse_history(history)
    asked = standalone(question, turns, index, llm) if question else Standalone("", "")
    asked.search = plain_question(asked.search) if asked.search else ""
    vector = embed_question(index, asked.search)
    depth = reading_depth(settings, k)
    found = retrieve(index, asked, depth, vector)
    hits, reranked = rerank(reranker, asked.search, found, depth, keep_order=bool(asked.prefer))
    hits = hits[:k]
    sig = signals(asked.search, hits, index, stats, query_vector=vector, rerank=reranked)
    verdict = judge(sig, threshold)
    mode = "llm" if llm is not None else "extractive"
    base: dict[str, Any] = {
        "answered_question": asked.answered,
        "evidence": sig.evidence,
        "threshold": threshold,
        "signals": sig.to_dict(),
        "tokens_in": asked.tokens_in,
        "tokens_out": asked.tokens_out,
        "llm_requests": asked.requests,
    }
    if asked.after_refusal and hits:  # offline only: with an LLM the rewrite is a question of its own
        return _unsure(
            hits, mode, "a follow-up naming no topic of its own, to questions the knowledge base could not answer", base
        )
    judged = bool(verdict.uncertain and llm is not None and hits and llm_may_judge(sig, threshold, settings))
    if not hits or (verdict.uncertain and not judged):
        return _unsure(hits, mode, verdict.reason if hits else "no atom matched", base)
    if llm is not None:
        if judged:  # weak evidence, nothing missing: the model reads the atoms and decides
            base = base | {"signals": base["signals"] | {"judged_by": "llm"}}
        result = _llm_answer(index, asked.search, hits, llm, base)
        if result.uncertain:  # no grounded citation, or citations of atoms it was never given
            reason = f"{verdict.reason}; {result.reason}" if judged else result.reason
            return _unsure(hits, mode, reason, base | _tokens(result))
        return result
    return _extractive_answer(index, asked.search, hits, base)


def llm_may_judge(sig: Any, threshold: float, settings: Settings) -> bool:
    """Whether a question the signals refused goes to the LLM after all: its evidence is only weak
    (no word or phrase the knowledge base lacks) and within ``serve.llm_judge_band`` of the threshold.

    Offline, a free paraphrase and an in-domain question the atoms never cover look alike (issue 10's
    note); a model reading the question against the atoms tells them apart, and its answer still has to
    cite an atom it was given. Far below the threshold (poems, trivia) nothing is asked: no request spent."""
    band = settings.serve.llm_judge_band
    return bool(band > 0 and not sig.missing and sig.score() >= threshold - band)


def embed_question(index: Any, text: str) -> Any | None:
    """The question's vector, once for the search and the signals (None without an embedder)."""
    embedder = getattr(index, "embedder", None)
    if embedder is None or not text.strip():
        return None
    model = getattr(embedder, "model_id", None)
    with telemetry.span(
        f"embeddings {model}", **{"gen_ai.operation.name": "embeddings", "gen_ai.request.model": model}
    ):
        return embedder.encode([text])[0]


def retrieve(index: Any, asked: Standalone, k: int, vector: Any | None = None) -> list[Any]:
    """The hits for a standalone question: atoms cited earlier first when the follow-up is elliptic."""
    if not asked.search:
        return []
    if not asked.prefer:
        return index.search(asked.search, k=k, query_vector=vector)
    hits = index.search(asked.search, k=max(k, 10), query_vector=vector)
    first = [h for aid in asked.prefer for h in hits if h.atom_id == aid]
    rest = [h for h in hits if h not in first]
    return (first + rest)[:k]


def _tokens(result: Answer) -> dict[str, int]:
    return {"tokens_in": result.tokens_in, "tokens_out": result.tokens_out, "llm_requests": result.llm_requests}


def _unsure(hits: list[Any], mode: str, reason: str, base: dict[str, Any]) -> Answer:
    suggestions = [{"atom_id": h.atom_id, "title": h.title} for h in hits[:SUGGESTIONS]]
    text = IDK
    if suggestions:
        text += " Closest topics it has (not an answer): " + "; ".join(s["title"] for s in suggestions) + "."
    return Answer(text, True, [], suggestions, mode=mode, reason=reason, **base)


# --------------------------------------------------------------------------------------------
# extractive


def _extractive_answer(index: Any, question: str, hits: list[Any], base: dict[str, Any]) -> Answer:
    best = hits[0]
    h = hit_dict(best)
    text, used_heading = _passage_answer(index, h)
    focus = " ".join([question, h["passage"].get("heading") or "", text])[:4000]
    text = f"{_clip(text, MAX_ANSWER_CHARS)} [{h['atom_id']}]"
    return Answer(text, False, [citation(best, focus, used_heading)], mode="extractive", **base)


#: The section of each type that says what to do: added to an answer cut from another section.
RESOLUTION_SECTIONS = ("How to resolve", "Steps", "Actions", "Tip", "What to do instead", "Template", "Effect")


def _passage_answer(index: Any, h: dict[str, Any]) -> tuple[str, str]:
    """(text to show for the best hit, heading of the passage it comes from)."""
    passage = h.get("passage") or {}
    kind = passage.get("kind", "")
    heading = passage.get("heading") or ""
    ptext = (passage.get("text") or "").strip()
    atom = index.atom(h["atom_id"]) or {}
    faqs = [_pair(p) for p in atom.get("faq") or []]
    if kind == "faq":
        for q, a in faqs:
            if q and _norm(q) in _norm(ptext):
                return a.strip(), q
        m = re.search(r"\bA:\**\s*(.*)", ptext, re.S)
        if m:
            return m.group(1).strip(), heading
    sections = _sections(atom)
    todo = next(((name, sections[name]) for name in RESOLUTION_SECTIONS if sections.get(name)), None)
    if kind == "section" and ptext:
        if todo and todo[0] != heading and todo[1] not in ptext:
            return f"{ptext}\n\n{todo[0]}: {todo[1]}", heading
        return ptext, heading
    summary = str(atom.get("summary") or (atom.get("meta") or {}).get("summary") or "").strip()
    if faqs:
        return faqs[0][1].strip(), faqs[0][0]
    if todo:
        return f"{summary}\n\n{todo[0]}: {todo[1]}".strip(), todo[0]
    return summary or ptext or h["title"], heading


def _sections(atom: dict[str, Any]) -> dict[str, str]:
    body = atom.get("body")
    if not body:
        return {}
    from pipeline.atoms import parse_body

    sections, _, _ = parse_body(str(body))
    return {s.heading: s.text for s in sections if s.level == 2 and s.heading != "FAQ"}


def _pair(pair: Any) -> tuple[str, str]:
    if isinstance(pair, dict):
        return str(pair.get("question", "")), str(pair.get("answer", ""))
    return str(getattr(pair, "question", "")), str(getattr(pair, "answer", ""))


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit)
    return text[: max(cut, 1)].rstrip() + " …"


# --------------------------------------------------------------------------------------------
# LLM-grounded

SYSTEM_PROMPT = """You answer questions for engineers using ONLY the knowledge atoms below.
Each atom starts with its id in square brackets. Rules:
- Use only facts stated in the atoms. Do not add anything from your own knowledge.
- Cite every sentence with the id of the atom it comes from, in square brackets, e.g. [some-atom-id].
- If the atoms do not answer the question, say "I don't know" and cite nothing.
- Be brief: a few sentences or a short list of steps."""


def build_messages(index: Any, question: str, hits: list[Any]) -> list[dict[str, str]]:
    blocks = []
    for hit in hits[:LLM_CONTEXT_ATOMS]:
        h = hit_dict(hit)
        atom = index.atom(h["atom_id"]) or {}
        body = str(atom.get("body") or (h.get("passage") or {}).get("text") or "")
        summary = str(atom.get("summary") or (atom.get("meta") or {}).get("summary") or "")
        text = f"[{h['atom_id']}] {h['title']} ({h['type']})\n{summary}\n\n{_clip(body.strip(), LLM_ATOM_CHARS)}"
        blocks.append(text.strip())
    context = "\n\n---\n\n".join(blocks)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Knowledge atoms:\n\n{context}\n\n---\n\nQuestion: {question}"},
    ]


def _llm_answer(index: Any, question: str, hits: list[Any], llm: Any, base: dict[str, Any]) -> Answer:
    shown = {hit_dict(h)["atom_id"]: h for h in hits[:LLM_CONTEXT_ATOMS]}
    result = llm.chat(build_messages(index, question, hits))
    text = (result.text or "").strip()
    cited = list(dict.fromkeys(CITATION_RE.findall(text)))
    grounded = [c for c in cited if c in shown]
    invented = [c for c in cited if c not in shown]
    base = base | {
        "tokens_in": base["tokens_in"] + int(result.tokens_in or 0),
        "tokens_out": base["tokens_out"] + int(result.tokens_out or 0),
        "llm_requests": base["llm_requests"] + 1,
    }
    if not grounded:
        return Answer(IDK, True, [], mode="llm", reason="the model's answer cites no retrieved atom", **base)
    reason = f"the model cited atoms it was not given: {', '.join(invented)}" if invented else ""
    focus = question + " " + text
    # the atom cited first is the one the text rests on most: it comes first
    return Answer(
        text, bool(invented), [citation(shown[c], focus) for c in grounded], mode="llm", reason=reason, **base
    )
