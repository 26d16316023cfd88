"""``kb eval``: retrieval quality of a bundle (recall@1/5/10 and MRR).

Golden set: by default every FAQ question of every atom in the bundle, expecting its own atom
(does a user's question find the atom that answers it?). With ``--holdout`` the pair's own
passage is hidden from the search, so the atom must be found through its other passages. Or a JSONL file, one question per line:
``{"question": "...", "expected_atoms": ["atom-id", ...]}`` and/or
``"expected_sources": ["docs/path.md", "interview-id", ...]`` (a hit counts when one of its
sources names that document, or a path ending in it, or that interview). ``"expected"`` is accepted for ``expected_atoms``.
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


@dataclass
class QuestionResult:
    question: str
    rank: int | None  # 1-based rank of the first relevant atom within k, else None
    top: list[str]


@dataclass
class EvalReport:
    bundle: Path
    golden: str
    k: int
    questions: int
    recall: dict[int, float]
    mrr: float
    seconds: float
    results: list[QuestionResult] = field(default_factory=list)

    def __str__(self) -> str:
        parts = ", ".join(f"recall@{c} {v:.3f}" for c, v in self.recall.items())
        return f"{self.questions} questions: {parts}, MRR {self.mrr:.3f}"

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "golden": self.golden,
            "k": self.k,
            "questions": self.questions,
            "recall": {f"@{c}": round(v, 4) for c, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
            "seconds": round(self.seconds, 3),
            "misses": [r.question for r in self.results if r.rank is None],
        }


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
        if not atoms and not sources:
            raise InputError("the question names no expected atoms or sources", hint, path=path, line=n)
        out.append(Question(str(data["question"]).strip(), atoms, sources, n))
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


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    *,
    bundle_path: Path | None = None,
    questions: Path | None = None,
    k: int = 10,
    holdout: bool = False,
    embedder: Any | None = None,
) -> EvalReport:
    started = time.perf_counter()
    path = Path(bundle_path) if bundle_path else newest_bundle(workspace)
    bundle = open_bundle(path, settings, embedder)
    try:
        golden = read_questions(questions) if questions else faq_questions(bundle, holdout)
        if not golden:
            raise InputError(
                f"The bundle {path} has no FAQ questions to evaluate with.",
                "Add FAQ pairs to the atoms, or pass --questions FILE.jsonl.",
            )
        for q in golden if questions else ():
            for aid in sorted(q.atoms):
                if bundle.atom(aid) is None:  # a typo here would silently count as a miss
                    reporter.warn(
                        f"{questions}:{q.line}: expected atom '{aid}' is not in the bundle; it counts as a miss"
                    )
        depth = max(k, *CUTOFFS)
        results: list[QuestionResult] = []
        for q in reporter.progress(golden, "Evaluating", total=len(golden)):
            hits = bundle.search(q.question, k=depth, exclude_passages=q.exclude)
            rank = next((i for i, h in enumerate(hits, 1) if _relevant(h, q)), None)
            results.append(QuestionResult(q.question, rank, [h.atom_id for h in hits[:k]]))
    finally:
        bundle.close()
    n = len(results)
    cutoffs = sorted({*CUTOFFS, k})
    recall = {c: sum(1 for r in results if r.rank is not None and r.rank <= c) / n for c in cutoffs}
    mrr = sum(1.0 / r.rank for r in results if r.rank is not None and r.rank <= k) / n
    return EvalReport(
        bundle=path,
        golden=str(questions) if questions else ("FAQ questions, own pair held out" if holdout else "FAQ questions"),
        k=k,
        questions=n,
        recall=recall,
        mrr=mrr,
        seconds=time.perf_counter() - started,
        results=results,
    )
