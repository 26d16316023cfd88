"""Calibrate the ``uncertain`` threshold of answers on real documentation. Printed, never asserted.

Positives: the FAQ questions of atoms imported (``kb import-docs``) from real docs (by default the
Argo CD and Podman docs in samples/docs). To keep them honest the bundle is exported with
the questions removed from every ``## FAQ`` section (the answers stay, as a plain section), so a
question cannot match its own stored copy: it has to find its atom through the title, summary,
sections and answers, as a user's new question would.
Negatives: questions the docs cannot answer (tests/data/service/offtopic.txt: everyday topics and
adjacent IT topics the docs do not cover).

This is the offline, fuller version of what the service does per bundle at load time
(``pipeline/answer/uncertain.py``) and gives the per-model fallback. The evidence of a question is what the service uses: the cosine similarity of the question and
its best passage (``pipeline.answer.evidence.evidence_of``). The threshold printed is the middle of the range
that maximises accuracy; put it in ``pipeline.answer.evidence.UNCERTAIN_BELOW`` for the embedding model.

    .venv/bin/python bench/calibrate_uncertain.py [--docs DIR ...] [--negatives FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
#: The real Argo CD FAQ/notifications and Podman troubleshooting docs shipped in samples/docs.
#: The shipped threshold was measured on the fuller trees (all 32 Argo CD pages + Podman):
#: pass them with --docs argocd-docs --docs podman-docs.
DEFAULT_DOCS = [ROOT / "samples" / "docs"]
NEGATIVES = ROOT / "tests" / "data" / "service" / "offtopic.txt"

_FAQ_SECTION = re.compile(r"^## FAQ\s*$.*?(?=^## |\Z)", re.M | re.S)


def _answers_only(match: re.Match) -> str:
    """``## FAQ`` with Q/A pairs -> ``## Answers`` with the answers only (the questions removed)."""
    lines = [line for line in match.group(0).splitlines()[1:] if not line.lstrip().startswith("**Q:**")]
    body = "\n".join(line.replace("**A:**", "", 1) for line in lines).strip()
    return f"## Answers\n\n{body}\n\n" if body else ""


def build(tmp: Path, docs: list[Path]) -> tuple[Path, list[str]]:
    """Import the docs, collect their FAQ questions, drop them from the atoms, export. -> (bundle, questions)."""
    from pipeline import atoms
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export, import_docs
    from pipeline.stages import init as init_stage
    from pipeline.workspace import Workspace

    root = tmp / "ws"
    init_stage.run(root)
    ws = Workspace.at(root, discover=False)
    settings = Settings.load(root)
    for folder in docs:
        import_docs.run(settings, ws, Reporter(), folder)
    questions: list[str] = []
    for path in ws.atom_files():
        atom = atoms.read(path)
        questions += [pair.question for pair in atom.faq]
        text = path.read_text(encoding="utf-8")
        path.write_text(_FAQ_SECTION.sub(_answers_only, text), encoding="utf-8")
    out = tmp / "kb-calibration.duckdb"
    export.run(settings, ws, Reporter(), out=out)
    return out, questions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=Path, action="append", help="a Markdown docs folder (repeatable)")
    ap.add_argument("--negatives", type=Path, default=NEGATIVES)
    args = ap.parse_args()
    docs = args.docs or DEFAULT_DOCS
    for folder in docs:
        if not folder.is_dir():
            raise SystemExit(f"no docs folder {folder}; pass --docs DIR")

    from pipeline.answer import UNCERTAIN_BELOW, evidence_of
    from pipeline.answer.uncertain import best_threshold
    from pipeline.backends.embed import embedder_for_manifest
    from pipeline.index.bundle import Bundle

    negatives = [
        line.strip() for line in args.negatives.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    with tempfile.TemporaryDirectory(prefix="kb-calibrate-") as tmp:
        bundle_path, positives = build(Path(tmp), docs)
        bundle = Bundle.load(bundle_path, embedder_for_manifest)
        pos = [evidence_of(bundle.search(q, k=5), bundle, q) for q in positives]
        neg = [evidence_of(bundle.search(q, k=5), bundle, q) for q in negatives]
        model = bundle.manifest.embedding.model
        bundle.close()
    threshold, acc, low, high = best_threshold(pos, neg)
    tpr = sum(p >= threshold for p in pos) / len(pos)
    tnr = sum(n < threshold for n in neg) / len(neg)
    print(f"docs: {', '.join(str(d) for d in docs)}; model {model}")
    print(
        f"positives (FAQ questions, removed from atoms): {len(pos)}   min {min(pos):.3f}  median {sorted(pos)[len(pos) // 2]:.3f}"
    )
    print(
        f"negatives (off-topic questions):            {len(neg)}   max {max(neg):.3f}  median {sorted(neg)[len(neg) // 2]:.3f}"
    )
    print(
        f"threshold {threshold:.3f} (maximal accuracy between {low:.3f} and {high:.3f}): accuracy {acc:.3f}, "
        f"certain when answerable {tpr:.3f}, uncertain when not {tnr:.3f}"
    )
    print("closest calls (evidence, label, question):")
    rows = sorted(
        [(v, "answerable", q) for v, q in zip(pos, positives, strict=True)]
        + [(v, "off-topic", q) for v, q in zip(neg, negatives, strict=True)],
        key=lambda r: abs(r[0] - threshold),
    )
    for v, label, q in rows[:8]:
        print(f"  {v:.3f}  {label:10s}  {q[:90]}")
    print(
        "accuracy by threshold: "
        + "  ".join(
            f"{t:.2f}:{(sum(p >= t for p in pos) + sum(n < t for n in neg)) / (len(pos) + len(neg)):.3f}"
            for t in (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55)
        )
    )
    current = UNCERTAIN_BELOW.get(model.rstrip("/").rsplit("/", 1)[-1])
    if current is not None:
        cur_acc = (sum(p >= current for p in pos) + sum(n < current for n in neg)) / (len(pos) + len(neg))
        print(f"shipped default for {model}: {current} -> accuracy {cur_acc:.3f} on this data")


if __name__ == "__main__":
    main()
