"""Benchmark ``kb export`` against the raw encoder on the same passages.

Imports the real Argo CD and Podman docs of tests/data/docs into a temp workspace (``kb
import-docs``), then, with one embedder loaded once (model loading excluded everywhere):

- reference: ``embedder.encode`` over exactly the passages the export embeds, in the export's
  batch size (the floor: export cannot embed faster than its model);
- a cold export (empty embedding cache): reading atoms, cutting passages, BM25 tokens, embedding,
  writing and verifying the DuckDB file;
- a warm re-export after a reviewer edits one atom (only its changed passages are embedded).

Prints passages/s and the ratio export / raw encoder (target: close to 1, the model dominates).
Usage: ``python bench/export_bench.py [--backend sentence-transformers|onnx]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline.config import Settings  # noqa: E402
from pipeline.reporting import Reporter  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "tests" / "data" / "docs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="sentence-transformers", choices=["sentence-transformers", "onnx"])
    args = ap.parse_args()

    from pipeline.backends.embed import load_embedder
    from pipeline.stages import export, import_docs

    with tempfile.TemporaryDirectory(prefix="kb-export-bench-") as tmp_name:
        root = Path(tmp_name) / "ws"
        root.mkdir()
        (root / "kb.yaml").write_text(f"threads: 1\nembed:\n  backend: {args.backend}\n")
        ws = Workspace.at(root, discover=False)
        settings = Settings.load(root)
        for name in ("argocd", "podman"):
            shutil.copytree(DOCS / name, Path(tmp_name) / "docs" / name)
            import_docs.run(settings, ws, Reporter(), Path(tmp_name) / "docs" / name, tags=[name])
        embedder = load_embedder(settings)
        t = time.perf_counter()
        embedder.encode(["load the model now"])
        print(f"embedder {embedder!r} loaded in {time.perf_counter() - t:.1f}s (excluded below)")

        atoms, _, _ = export._read_atoms(ws, export.EXPORTABLE)
        _, passages = export.build_content(ws, atoms, embedder)
        texts = [p.search_text for p in passages]
        batch = settings.embed.batch_size
        embedder.encode(texts[:batch])  # warm up

        def raw() -> float:
            t0 = time.perf_counter()
            for s in range(0, len(texts), batch):
                embedder.encode(texts[s : s + batch])
            return time.perf_counter() - t0

        ref1 = raw()
        t0 = time.perf_counter()
        cold = export.run(settings, ws, Reporter(), out=root / "dist" / "cold.duckdb", embedder=embedder)
        cold_s = time.perf_counter() - t0
        ref2 = raw()
        ref = min(ref1, ref2)

        edit = sorted(ws.atom_files())[0]
        edit.write_text(edit.read_text() + "\nOne more paragraph a reviewer added.\n")
        t0 = time.perf_counter()
        warm = export.run(settings, ws, Reporter(), out=root / "dist" / "warm.duckdb", embedder=embedder)
        warm_s = time.perf_counter() - t0

        n = len(texts)
        print(f"{len(atoms)} atoms, {n} passages (mean {sum(map(embedder.count_tokens, texts)) / n:.0f} word pieces)")
        print(f"raw encoder (reference)      {ref:7.2f}s  {n / ref:7.1f} passages/s   (runs: {ref1:.2f}s, {ref2:.2f}s)")
        print(
            f"kb export, cold cache        {cold_s:7.2f}s  {n / cold_s:7.1f} passages/s   {cold_s / ref:.2f}x the raw encoder"
        )
        print(f"  ({cold})")
        print(
            f"kb export, one atom edited   {warm_s:7.2f}s  embedded {warm.embedded} of {warm.passages}   {warm_s / ref:.2f}x the raw encoder"
        )


if __name__ == "__main__":
    main()
