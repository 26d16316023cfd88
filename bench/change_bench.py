"""Benchmark ``kb change plan`` over 3,000 near-identical Argo CD Applications (issue 12; target
>= 0.5x a plain ruamel.yaml load+dump loop over the same files, measured in the same run).

Makes N files from the 30 test Applications (renamed, so every file is distinct), registers the
real Argo CD Application CRD schema for them, then times:

- reference: ruamel.yaml round-trip load + dump of every file (the floor of any comment-keeping editor),
- ``engine.make_plan``: select, edit, round-trip check, dump, validate against the CRD schema,
  diff, and write ``plans/<id>/`` (what ``kb change plan`` does after argument parsing),
- the real CLI once (``kb change plan --format json``, process start included).

Prints files/s and the ratio; asserts nothing. Usage: ``python bench/change_bench.py [-n 3000]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.change import engine  # noqa: E402
from pipeline.change.recipe import from_flags  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402

DATA = ROOT / "tests" / "data" / "change"


def make_files(folder: Path, n: int) -> list[Path]:
    src = sorted((DATA / "apps").glob("*.yaml"))
    out = []
    for i in range(n):
        base = src[i % len(src)]
        text = base.read_text().replace(f"name: {base.stem}", f"name: {base.stem}-{i:05d}", 1)
        path = folder / f"{base.stem}-{i:05d}.yaml"
        path.write_text(text)
        out.append(path)
    return out


def reference(files: list[Path]) -> float:
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    t0 = time.perf_counter()
    for p in files:
        data = y.load(p.read_text())
        buf = io.StringIO()
        y.dump(data, buf)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kb-change-bench-"))
    try:
        (tmp / "kb.yaml").write_text("{}\n")
        configs = tmp / "schemas" / "configs"
        configs.mkdir(parents=True)
        shutil.copy(DATA / "argocd-application.schema.json", configs / "argocd-application.json")
        (configs / "targets.yaml").write_text("argocd-application:\n- apps/*.yaml\n")
        (tmp / "apps").mkdir()
        files = make_files(tmp / "apps", args.n)
        ws = Workspace.at(tmp)
        recipe = from_flags(
            files=["apps/*.yaml"],
            where=["metadata.labels.team=payments"],
            set_=["spec.syncPolicy.automated.prune=true"],
            append=["spec.syncPolicy.syncOptions=PruneLast=true"],
            delete=[],
        )
        ref = reference(files)
        t0 = time.perf_counter()
        plan = engine.make_plan(ws, recipe, base=tmp)
        kb_s = time.perf_counter() - t0
        ref2 = reference(files)  # again after, so a neighbour's load hits both sides
        ref = min(ref, ref2)
        print(f"files: {len(files)}  plan: {plan.summary_line()}")
        print(f"ruamel.yaml load+dump reference: {len(files) / ref:8.0f} files/s")
        print(
            f"kb change plan (engine):         {len(files) / kb_s:8.0f} files/s   "
            f"ratio {ref / kb_s:.2f}x (target >= 0.5x)"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline",
                "-q",
                "-w",
                str(tmp),
                "change",
                "plan",
                "--files",
                "apps/*.yaml",
                "--set",
                "metadata.labels.tier=web",
                "--format",
                "json",
            ],
            cwd=tmp,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cli_s = time.perf_counter() - t0
        print(f"kb change plan (CLI, one run):   {len(files) / cli_s:8.0f} files/s   ratio {ref / cli_s:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
