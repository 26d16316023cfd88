"""The answerability table of issue 10: flagged shares and recall per evaluation split. Printed, never asserted.

Over atoms imported from the real Podman + Argo CD docs (tests/data/docs, or ``--bundle``), with the
bundle's own calibration (as ``kb serve`` does), each split goes through ``kb eval``'s library
function (``pipeline.stages.evaluate.run``), so the figures are the ones ``kb eval --questions``
prints:

- ``dev``, ``dev2`` and ``dev4`` (the hard cases): the tuning splits (thresholds and rules are chosen on
  them); ``dev3``: a check written after tuning (not tuned on);
- ``report``, ``report-b`` and ``report-c`` (written blind, committed before any tuning): only with ``--report``;
  measured, never tuned on (tests/data/eval/README.md).

Columns: unanswerable flagged (target >= 0.90), answerable wrongly flagged (target <= 0.05; "unretrieved":
those whose atom was not in the top 5 either, so the refusal kept a wrong answer away; "suggested": those
whose atom the "I don't know" lists among its suggestions),
recall@5, last-turn recall@5 of the split's conversations (target >= 0.85).

    python bench/answerability_eval.py [--bundle FILE] [--report] [--misses]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SETS = ROOT / "tests" / "data" / "eval"
TUNING = ("dev", "dev2", "dev3", "dev4")
REPORT = ("report", "report-b", "report-c")  # measured only, never tuned on


def row(name: str, bundle: Path, embedder: object, misses: bool) -> str:
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import evaluate

    settings = Settings.load(None)
    conv = SETS / f"conversations-{name}.jsonl"
    q = evaluate.run(
        settings, None, Reporter(), bundle_path=bundle, questions=SETS / f"{name}.jsonl", k=5, embedder=embedder
    )  # type: ignore[arg-type]
    c = (
        evaluate.run(settings, None, Reporter(), bundle_path=bundle, conversations=conv, k=5, embedder=embedder)  # type: ignore[arg-type]
        if conv.is_file()
        else None
    )
    if misses and name in TUNING:  # never list the report splits: reading them is tuning on them
        for r in q.results:
            if r.flagged != r.unanswerable:
                print(f"  [{name}] {'not flagged' if r.unanswerable else 'wrongly flagged'}: {r.question} ({r.reason})")
    n_ans = q.questions
    from pipeline.answer.core import SUGGESTIONS

    suggested = sum(1 for r in q.results if r.flagged and not r.unanswerable and r.rank and r.rank <= SUGGESTIONS)
    wrong = round((q.answerable_flagged or 0) * n_ans)
    caught = round((q.unanswerable_flagged or 0) * q.unanswerable)
    conv_cell = f"{c.conversation_recall.get(5, 0):.3f} ({c.conversations})" if c else "-"
    return (
        f"| {name} | {q.unanswerable_flagged or 0:.3f} ({caught}/{q.unanswerable}) | "
        f"{q.answerable_flagged or 0:.3f} ({wrong}/{n_ans}; {q.flagged_unretrieved} unretrieved, {suggested} suggested) | {q.recall.get(5, 0):.3f} | {conv_cell} | {q.threshold:.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, help="a bundle of the Podman + Argo CD docs (default: built here)")
    ap.add_argument("--report", action="store_true", help="measure the report splits too (never tune on them)")
    ap.add_argument("--misses", action="store_true", help="list the questions judged wrongly")
    args = ap.parse_args()

    from answer_bench import build

    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import Bundle

    with tempfile.TemporaryDirectory(prefix="kb-answerability-") as tmp:
        path = args.bundle or build(Path(tmp))
        embedder = Bundle.load(path, embedder_for_manifest).embedder  # one model load for every split
        print(
            "| split | unanswerable flagged | answerable wrongly flagged | recall@5 | conv. last-turn recall@5 | threshold |"
        )
        print("|---|---|---|---|---|---|")
        for name in TUNING + (REPORT if args.report else ()):
            print(row(name, path, embedder, args.misses), flush=True)


if __name__ == "__main__":
    main()
