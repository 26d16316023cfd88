"""Answer a question from a loaded bundle, with citations a person can check.

Two ways to answer, one rule: never more than the knowledge base says.

* With an LLM configured (``llm.base_url`` or the key in ``llm.api_key_env``): the retrieved
  atoms' text goes to the model, which must cite atoms by id as ``[atom-id]``. An answer that
  cites no retrieved atom is refused (``uncertain: true``, no citations); one that also cites ids
  it was never shown stays, flagged uncertain.
* Without: extractive. The best FAQ pair (or section) of the best atom is the answer, verbatim.

``uncertain`` is also true when the retrieval evidence is weak: the cosine similarity between the
question and the best matching passage is below a threshold calibrated on real data (see
``UNCERTAIN_BELOW`` and ``bench/calibrate_uncertain.py``). Overridable with
``serve.uncertain_below``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.config import Settings, secret

#: Calibrated uncertainty thresholds per embedding model (cosine of the question vs the best
#: passage). Measured by ``bench/calibrate_uncertain.py`` (2026-11): the 30 FAQ questions of the
#: 179 atoms imported from the real Argo CD and Podman docs (questions removed from the bundle) as
#: positives, 40 off-topic and adjacent-IT questions as negatives; the middle of the widest range
#: of maximal accuracy: 0.411 -> accuracy 0.943 (answerable 0.900 certain, off-topic 0.975 uncertain).
UNCERTAIN_BELOW: dict[str, float] = {
    "all-MiniLM-L6-v2": 0.41,
}
#: For models never calibrated: the MiniLM figure; run the calibration and set
#: ``serve.uncertain_below`` for yours.
DEFAULT_UNCERTAIN_BELOW = 0.41

CITATION_RE = re.compile(r"\[([a-z0-9][a-z0-9-]{0,119})\]")
MAX_ANSWER_CHARS = 1500
LLM_CONTEXT_ATOMS = 4
LLM_ATOM_CHARS = 2500

IDK = "I don't know: the knowledge base has no answer to this question."


class _Bundle(Protocol):  # what answering needs of pipeline.index.bundle.Bundle
    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Any]: ...
    def atom(self, atom_id: str) -> dict | None: ...


@dataclass
class Answer:
    answer: str
    uncertain: bool
    citations: list[dict[str, Any]] = field(default_factory=list)
    evidence: float = 0.0  # cosine of the question vs the best passage
    threshold: float = DEFAULT_UNCERTAIN_BELOW
    mode: str = "extractive"  # extractive | llm
    reason: str = ""  # why uncertain, for logs and --format json
    tokens_in: int = 0
    tokens_out: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The public shape of ``POST /v1/ask``."""
        return {"answer": self.answer, "uncertain": self.uncertain, "citations": self.citations}


def threshold_for(model_id: str | None, settings: Settings) -> float:
    """The evidence threshold under which an answer is uncertain."""
    if settings.serve.uncertain_below is not None:
        return settings.serve.uncertain_below
    name = (model_id or "").rstrip("/").rsplit("/", 1)[-1]
    return UNCERTAIN_BELOW.get(name, DEFAULT_UNCERTAIN_BELOW)


def llm_configured(settings: Settings) -> bool:
    """An LLM is configured when it has an endpoint or a key; otherwise answers are extractive."""
    return bool(settings.llm.base_url or secret(settings.llm.api_key_env))


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


def evidence_of(hits: list[Any], bundle: Any | None = None, question: str | None = None) -> float:
    """The retrieval evidence: the best cosine of the question and a hit's passage (0: no hits).

    Uses the cosine the search computed when the hit carries it; otherwise embeds the question
    and the hits' passages with the bundle's embedder (one batch).
    """
    if not hits:
        return 0.0
    known = [_hit_cosine(h) for h in hits]
    if all(v is not None for v in known):
        return max(0.0, max(known))
    embedder = getattr(bundle, "embedder", None)
    if embedder is None or question is None:
        return max([0.0] + [v for v in known if v is not None])
    texts = [question] + [str((hit_dict(h)["passage"] or {}).get("text") or hit_dict(h)["title"]) for h in hits]
    vectors = embedder.encode(texts)
    return max(0.0, float((vectors[1:] @ vectors[0]).max()))


def _hit_cosine(hit: Any) -> float | None:
    for name in ("similarity", "dense_score", "cosine", "dense"):
        value = hit.get(name) if isinstance(hit, dict) else getattr(hit, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def answer(
    bundle: _Bundle,
    question: str,
    settings: Settings,
    llm: Any | None = None,
    *,
    k: int = 5,
    model_id: str | None = None,
    threshold: float | None = None,
) -> Answer:
    """Answer ``question`` from ``bundle``: LLM-grounded when ``llm`` is given or configured.

    ``threshold``: the evidence under which the answer is uncertain (``calibration.calibrate``
    measures it per bundle); default: the setting or the embedding model's calibrated figure.
    """
    question = question.strip()
    hits = bundle.search(question, k=k) if question else []
    evidence = evidence_of(hits, bundle, question)
    if model_id is None:
        model_id = _bundle_model(bundle)
    if threshold is None:
        threshold = threshold_for(model_id, settings)
    weak = evidence < threshold
    if llm is None and llm_configured(settings):
        from pipeline.backends.llm import make_client

        llm = make_client(settings)
    if not hits:
        return Answer(IDK, True, [], evidence, threshold, "llm" if llm else "extractive", "no atom matched")
    if llm is not None:
        result = _llm_answer(bundle, question, hits, llm)
    else:
        result = _extractive_answer(bundle, hits, weak)
    result.evidence, result.threshold = evidence, threshold
    if weak:
        result.uncertain = True
        result.reason = result.reason or f"weak retrieval evidence ({evidence:.2f} < {threshold:.2f})"
    return result


def _bundle_model(bundle: Any) -> str | None:
    manifest = getattr(bundle, "manifest", None)
    embedding = getattr(manifest, "embedding", None)
    return getattr(embedding, "model", None)


# --------------------------------------------------------------------------------------------
# extractive


def _extractive_answer(bundle: _Bundle, hits: list[Any], weak: bool) -> Answer:
    best = hits[0]
    h = hit_dict(best)
    text = _passage_answer(bundle, h)
    focus = " ".join([h["passage"].get("heading") or "", h["passage"].get("text") or "", text])[:4000]
    text = _clip(text, MAX_ANSWER_CHARS)
    if weak:
        text = f'I\'m not sure: nothing in the knowledge base matches this question closely. The closest atom, "{h["title"]}", says:\n\n{text}'
    text = f"{text} [{h['atom_id']}]"
    return Answer(text, weak, [citation(best, focus)], mode="extractive")


#: The section of each type that says what to do: added to an answer cut from another section.
RESOLUTION_SECTIONS = ("How to resolve", "Steps", "Actions", "Tip", "What to do instead", "Template", "Effect")


def _passage_answer(bundle: _Bundle, h: dict[str, Any]) -> str:
    """The text to show for the best hit: its FAQ answer, or its section (plus what to do), or its summary."""
    passage = h.get("passage") or {}
    kind = passage.get("kind", "")
    heading = passage.get("heading") or ""
    ptext = (passage.get("text") or "").strip()
    atom = bundle.atom(h["atom_id"]) or {}
    faqs = [_pair(p) for p in atom.get("faq") or []]
    if kind == "faq":
        for q, a in faqs:
            if q and _norm(q) in _norm(ptext):
                return a.strip()
        m = re.search(r"\bA:\**\s*(.*)", ptext, re.S)
        if m:
            return m.group(1).strip()
    sections = _sections(atom)
    todo = next(((name, sections[name]) for name in RESOLUTION_SECTIONS if sections.get(name)), None)
    if kind == "section" and ptext:
        if todo and todo[0] != heading and todo[1] not in ptext:
            return f"{ptext}\n\n{todo[0]}: {todo[1]}"
        return ptext
    summary = str(atom.get("summary") or (atom.get("meta") or {}).get("summary") or "").strip()
    if faqs:
        return faqs[0][1].strip()
    if todo:
        return f"{summary}\n\n{todo[0]}: {todo[1]}".strip()
    return summary or ptext or h["title"]


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


def build_messages(bundle: _Bundle, question: str, hits: list[Any]) -> list[dict[str, str]]:
    blocks = []
    for hit in hits[:LLM_CONTEXT_ATOMS]:
        h = hit_dict(hit)
        atom = bundle.atom(h["atom_id"]) or {}
        body = str(atom.get("body") or (h.get("passage") or {}).get("text") or "")
        summary = str(atom.get("summary") or (atom.get("meta") or {}).get("summary") or "")
        text = f"[{h['atom_id']}] {h['title']} ({h['type']})\n{summary}\n\n{_clip(body.strip(), LLM_ATOM_CHARS)}"
        blocks.append(text.strip())
    context = "\n\n---\n\n".join(blocks)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Knowledge atoms:\n\n{context}\n\n---\n\nQuestion: {question}"},
    ]


def _llm_answer(bundle: _Bundle, question: str, hits: list[Any], llm: Any) -> Answer:
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


# --------------------------------------------------------------------------------------------
# presenting citations (CLI, chat completions, demo)


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
