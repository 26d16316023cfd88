"""``kb eval``: retrieval quality of a bundle (recall@1/5/10 and MRR).

Golden set: by default every FAQ question of every atom in the bundle, expecting its own atom
(does a user's question find the atom that answers it?). With ``--holdout`` the pair's own
passage is hidden from the search, so the atom must be found through its other passages. Or a JSONL file, one question per line:
``{"question": "...", "expected_atoms": ["atom-id", ...]}`` and/or
``"expected_sources": ["docs/path.md", "interview-id", ...]`` (a hit counts when one of its
sources names that document, or a path ending in it, or that interview). ``"expected"`` is accepted for ``expected_atoms``.
``"expected": []`` marks a question the knowledge base cannot answer: it does not count in recall;
the report gives the share of those flagged uncertain and the share of answerable ones wrongly
flagged (the answerability check of ``pipeline.answer``, calibrated on the bundle as ``kb serve`` does).
``conversations``: a JSONL file of ``{"turns": [user turns...], "expected": [...]}``; every turn but
the last is answered with the earlier ones as history, and the last turn's recall is reported.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.answer.bundle import open_bundle
from pipeline.config import Settings
from pipeline.errors import InputError, NotFoundError
from pipeline.index import bundle as bundle_file
from pipeline.index.bundle import Bundle
from pipeline.reporting import Reporter
from pipeline.textio import read_utf8
from pipeline.workspace import Workspace

CUTOFFS = (1, 5, 10)


@dataclass
class Question:
    question: str
    atoms: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    line: int | None = None
    exclude: list[int] = field(default_factory=list)  # passage ids hidden from the search
    unanswerable: bool = False  # "expected": [] -- the knowledge base has no answer


@dataclass
class Conversation:
    turns: list[str]
    atoms: set[str]
    line: int | None = None


@dataclass
class QuestionResult:
    question: str
    rank: int | None  # 1-based rank of the first relevant atom within k, else None
    top: list[str]
    unanswerable: bool = False
    flagged: bool = False  # the answer would be uncertain
    reason: str = ""
    spent: tuple[int, int, int] = (0, 0, 0)  # LLM requests, tokens in, tokens out (``--llm``)


@dataclass
class EvalReport:
    bundle: Path | str  # the bundle file, or the Postgres index (URL without password)
    golden: str
    k: int
    questions: int
    recall: dict[int, float]
    mrr: float
    seconds: float
    results: list[QuestionResult] = field(default_factory=list)
    unanswerable: int = 0
    unanswerable_flagged: float | None = None  # share of unanswerable questions flagged uncertain
    answerable_flagged: float | None = None  # share of answerable questions wrongly flagged
    threshold: float | None = None
    conversations: int = 0
    conversation_recall: dict[int, float] = field(default_factory=dict)  # of the last turn
    judge: str = "signals"  # signals | llm (``--llm``: each question answered as kb serve would, through the model)

    @property
    def llm_requests(self) -> int:
        return sum(r.spent[0] for r in self.results)

    @property
    def tokens_in(self) -> int:
        return sum(r.spent[1] for r in self.results)

    @property
    def tokens_out(self) -> int:
        return sum(r.spent[2] for r in self.results)

    @property
    def flagged_unretrieved(self) -> int:
        """Answerable questions flagged whose atom was not in the top k either: had kb answered, it would
        have answered from the wrong atom, so the refusal kept a wrong answer away."""
        return sum(1 for r in self.results if not r.unanswerable and r.flagged and r.rank is None)

    def __str__(self) -> str:
        parts = ", ".join(f"recall@{c} {v:.3f}" for c, v in self.recall.items())
        out = f"{self.questions} questions: {parts}, MRR {self.mrr:.3f}"
        if self.answerable_flagged is not None:
            out += f"; answerable wrongly flagged {self.answerable_flagged:.3f}"
            if self.flagged_unretrieved:
                out += f" ({self.flagged_unretrieved} of them not in the top {self.k} either)"
        if self.unanswerable_flagged is not None:
            out += f"; {self.unanswerable} unanswerable, flagged {self.unanswerable_flagged:.3f}"
        if self.judge == "llm":
            out += f"; judged with the LLM ({self.llm_requests} requests, {self.tokens_in}+{self.tokens_out} tokens)"
        if self.conversations:
            out += f"; {self.conversations} conversations, last-turn recall@5 {self.conversation_recall.get(5, 0):.3f}"
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "golden": self.golden,
            "k": self.k,
            "questions": self.questions,
            "recall": {f"@{c}": round(v, 4) for c, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
            "seconds": round(self.seconds, 3),
            "misses": [r.question for r in self.results if r.rank is None and not r.unanswerable],
            "unanswerable": self.unanswerable,
            "unanswerable_flagged": _round(self.unanswerable_flagged),
            "answerable_flagged": _round(self.answerable_flagged),
            "answerable_flagged_unretrieved": self.flagged_unretrieved,
            "threshold": self.threshold,
            "not_flagged": [r.question for r in self.results if r.unanswerable and not r.flagged],
            "wrongly_flagged": [r.question for r in self.results if not r.unanswerable and r.flagged],
            "conversations": self.conversations,
            "conversation_recall": {f"@{c}": round(v, 4) for c, v in self.conversation_recall.items()},
            "judge": self.judge,
            "llm_requests": self.llm_requests,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def newest_bundle(workspace: Workspace) -> Path:
    found = bundle_file.newest_bundle(workspace.dist_dir)
    if found is None:
        raise NotFoundError(
            f"No bundle (kb-*.duckdb) in {workspace.dist_dir}.", "Write one with 'kb export', or pass --bundle FILE."
        )
    return found


def read_questions(path: Path) -> list[Question]:
    """Questions from a JSONL file; a bad line is an InputError with the file and line."""
    if not path.is_file():
        raise NotFoundError(f"Questions file {path} does not exist.", "Pass a JSONL file with one question per line.")
    out: list[Question] = []
    text = read_utf8(path, "Save the questions file as UTF-8.", bom=True)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        hint = 'Each line is {"question": "...", "expected_atoms": ["atom-id"]} and/or "expected_sources": [...].'
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", hint, path=path, line=n, column=exc.colno) from None
        if not isinstance(data, dict) or not str(data.get("question") or "").strip():
            raise InputError("the line has no 'question'", hint, path=path, line=n)
        atoms = _as_set(data.get("expected_atoms", data.get("expected", data.get("expected_atom"))))
        sources = _as_set(data.get("expected_sources"))
        unanswerable = data.get("expected", data.get("expected_atoms")) == [] and not sources
        if not atoms and not sources and not unanswerable:
            hint += ' An unanswerable question says "expected": [].'
            raise InputError("the question names no expected atoms or sources", hint, path=path, line=n)
        out.append(Question(str(data["question"]).strip(), atoms, sources, n, unanswerable=unanswerable))
    if not out:
        raise InputError("the questions file holds no questions", "Add one JSON object per line.", path=path)
    return out


def _as_set(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value}


def faq_questions(bundle: Bundle, holdout: bool = False) -> list[Question]:
    """Every FAQ question, expecting its atom; ``holdout`` hides the pair's own passage from search
    (otherwise the question finds itself verbatim and recall says little)."""
    return [Question(q, {atom_id}, exclude=own if holdout else []) for atom_id, q, own in bundle.faq_questions()]


def _relevant(hit: Any, q: Question) -> bool:
    if hit.atom_id in q.atoms:
        return True
    for s in hit.sources:
        name = str(s.get("document", s.get("interview", "")))
        if name in q.sources or any(name.endswith("/" + want) for want in q.sources):
            return True
    return False


def read_conversations(path: Path) -> list[Conversation]:
    """Conversations from a JSONL file: ``{"turns": ["...", "..."], "expected": ["atom-id"]}``."""
    if not path.is_file():
        raise NotFoundError(
            f"Conversations file {path} does not exist.", "Pass a JSONL file with one conversation per line."
        )
    hint = 'Each line is {"turns": ["first question", "follow-up"], "expected": ["atom-id"]}.'
    out = []
    for n, line in enumerate(read_utf8(path, "Save the file as UTF-8.", bom=True).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", hint, path=path, line=n, column=exc.colno) from None
        turns = data.get("turns") if isinstance(data, dict) else None
        if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) and t.strip() for t in turns):
            raise InputError("'turns' must list at least two user turns", hint, path=path, line=n)
        atoms = _as_set(data.get("expected"))
        if not atoms:
            raise InputError("the conversation names no expected atoms", hint, path=path, line=n)
        out.append(Conversation([t.strip() for t in turns], atoms, n))
    if not out:
        raise InputError("the file holds no conversations", "Add one JSON object per line.", path=path)
    return out


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    *,
    bundle_path: Path | str | None = None,
    questions: Path | None = None,
    conversations: Path | None = None,
    k: int = 10,
    holdout: bool = False,
    embedder: Any | None = None,
    llm: Any | None = None,
) -> EvalReport:
    """Recall, and the answerability check's flagged shares, over ``questions`` (or the FAQ) and
    ``conversations``. With ``llm`` each question is answered as ``kb serve`` would answer it with that
    model (``answer``: the model judges what the signals find weak), one request per question it reads."""
    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats

    started = time.perf_counter()
    from pipeline.index.postgres import is_postgres_url

    if llm is not None and holdout:
        raise InputError(LLM_HOLDOUT, "Drop --holdout, or pass --questions FILE.jsonl.")
    path: Any = bundle_path if is_postgres_url(bundle_path) else Path(bundle_path) if bundle_path else None
    path = path or newest_bundle(workspace)
    bundle = open_bundle(path, settings, embedder)
    path = str(bundle.path) if is_postgres_url(path) else path  # the URL without its password
    try:
        golden = read_questions(questions) if questions else ([] if conversations else faq_questions(bundle, holdout))
        talks = read_conversations(conversations) if conversations else []
        if not golden and not talks:
            raise InputError(
                f"The bundle {path} has no FAQ questions to evaluate with.",
                "Add FAQ pairs to the atoms, or pass --questions FILE.jsonl.",
            )
        for q in golden if questions else ():
            _warn_unknown_atoms(bundle, q, questions, reporter)
        stats = TermStats.of(bundle)
        threshold = calibrate(bundle, settings, stats).threshold
        depth = max(k, *CUTOFFS)
        results = [
            _judge_one(bundle, q, settings, llm, threshold, stats, depth, k)
            for q in reporter.progress(golden, "Evaluating", total=len(golden))
        ]
        talk_ranks = [_conversation_rank(bundle, c, settings, threshold, stats, depth) for c in talks]
    finally:
        bundle.close()
    answerable = [r for r in results if not r.unanswerable]
    unanswerable = [r for r in results if r.unanswerable]
    n = len(answerable) or 1
    cutoffs = sorted({*CUTOFFS, k})
    recall = {c: sum(1 for r in answerable if r.rank is not None and r.rank <= c) / n for c in cutoffs}
    mrr = sum(1.0 / r.rank for r in answerable if r.rank is not None and r.rank <= k) / n
    return EvalReport(
        bundle=path,
        golden=str(questions or conversations)
        if (questions or conversations)
        else ("FAQ questions, own pair held out" if holdout else "FAQ questions"),
        k=k,
        questions=len(answerable),
        recall=recall,
        mrr=mrr,
        seconds=time.perf_counter() - started,
        results=results,
        unanswerable=len(unanswerable),
        unanswerable_flagged=sum(r.flagged for r in unanswerable) / len(unanswerable) if unanswerable else None,
        answerable_flagged=sum(r.flagged for r in answerable) / len(answerable) if answerable else None,
        threshold=threshold,
        conversations=len(talks),
        conversation_recall={c: sum(1 for r in talk_ranks if r is not None and r <= c) / len(talks) for c in cutoffs}
        if talks
        else {},
        judge="llm" if llm is not None else "signals",
    )


LLM_HOLDOUT = "--llm cannot judge --holdout questions: the model would be shown the held-out pair."


def _warn_unknown_atoms(bundle: Any, q: Any, questions: Path | None, reporter: Reporter) -> None:
    for aid in sorted(q.atoms):
        if bundle.atom(aid) is None:  # a typo here would silently count as a miss
            reporter.warn(f"{questions}:{q.line}: expected atom '{aid}' is not in the bundle; it counts as a miss")


def _judge_one(
    bundle: Any,
    q: Any,
    settings: Settings,
    llm: Any | None,
    threshold: float,
    stats: Any,
    depth: int,
    k: int,
) -> QuestionResult:
    """One question's rank and verdict: the signals' own, or (``llm``) the answer kb serve would give;
    with what the model cost."""
    from pipeline.answer.answerability import judge, signals
    from pipeline.answer.core import embed_question
    from pipeline.answer.rerank import reading_depth, rerank
    from pipeline.backends.rerank import load_reranker

    vector = embed_question(bundle, q.question)
    found = bundle.search(q.question, k=depth, query_vector=vector, exclude_passages=q.exclude)
    hits, reranked = rerank(load_reranker(settings), q.question, found, reading_depth(settings, 5))  # as kb serve
    rank = None if q.unanswerable else next((i for i, h in enumerate(hits, 1) if _relevant(h, q)), None)
    if llm is not None:
        from pipeline.answer.core import answer

        said = answer(bundle, q.question, settings, llm, threshold=threshold, stats=stats)
        flagged, reason = said.uncertain, said.reason
        spent = (said.llm_requests, said.tokens_in, said.tokens_out)
    else:
        verdict = judge(signals(q.question, hits[:5], bundle, stats, set(q.exclude), vector, reranked), threshold)
        flagged, reason, spent = verdict.uncertain, verdict.reason, (0, 0, 0)
    top = [h.atom_id for h in hits[:k]]
    return QuestionResult(q.question, rank, top, q.unanswerable, flagged, reason, spent)


def _conversation_rank(
    bundle: Any, talk: Conversation, settings: Settings, threshold: float, stats: Any, depth: int
) -> int | None:
    """Answer every turn but the last with the earlier ones as history; the last turn's rank."""
    from pipeline.answer.conversation import parse_history, standalone
    from pipeline.answer.core import answer, retrieve
    from pipeline.answer.rerank import reading_depth, rerank
    from pipeline.backends.rerank import load_reranker

    history: list[dict[str, Any]] = []
    for turn in talk.turns[:-1]:
        result = answer(bundle, turn, settings, history=history, threshold=threshold, stats=stats)
        history += [
            {"role": "user", "content": turn},
            {"role": "assistant", "content": result.answer, "citations": result.citations},
        ]
    asked = standalone(talk.turns[-1], parse_history(history), bundle)
    found = retrieve(bundle, asked, depth)
    hits, _ = rerank(
        load_reranker(settings), asked.search, found, reading_depth(settings, 5), keep_order=bool(asked.prefer)
    )
    return next((i for i, h in enumerate(hits, 1) if h.atom_id in talk.atoms), None)
