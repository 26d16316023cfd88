"""Benchmark ``kb check`` over generated atoms (issue 2, item 11; target >= 2,000 atoms/s on one core).

Generates N varied atoms (all 8 types, every status, 250-950 words, FAQ pairs, config blocks,
``related`` links, ~1% near-duplicates, ~1% broken) in a temp workspace, then times:

- reference: read + split + YAML-load every file (the floor any checker pays),
- ``check.run`` without near-duplicate detection (what the pre-commit hook runs),
- ``check.run`` with near-duplicate detection (the default),
- the near-duplicate blocking alone, and the real CLI (``kb check --format json``) once.

Prints atoms/s and ratios; asserts nothing. Usage: ``python bench/check_bench.py [-n 10000]``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pipeline import atoms  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.models import ATOM_TYPES, STATUSES, TYPE_SECTIONS  # noqa: E402
from pipeline.reporting import Reporter  # noqa: E402
from pipeline.stages import check  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402

WORDS = (
    "sync application cluster repo server controller manifest helm kustomize namespace secret token "
    "timeout deadline exceeded reconcile health degraded progressing hook wave prune resource "
    "ingress certificate tls redis cache memory cpu limit replica shard webhook git branch commit "
    "revision rollback diff annotation label finalizer project role policy rbac sso dex oidc "
    "user login session cookie header proxy grpc port service deployment pod container image "
    "registry pull credential ssh known host gpg signature plugin sidecar config map value default "
    "operator notification trigger template slack email retry backoff queue worker parallelism"
).split()
GLUE = "the a when if then because it is not after before with for of to in on and or".split()


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.6 else rng.choice(GLUE) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, words: int) -> str:
    out, total = [], 0
    while total < words:
        n = rng.randint(8, 18)
        out.append(sentence(rng, n))
        total += n
    return " ".join(out)


def make_atom(i: int, rng: random.Random, titles: list[str], summaries: list[str]) -> tuple[str, str, str]:
    atype = ATOM_TYPES[i % len(ATOM_TYPES)]
    title = f"{sentence(rng, rng.randint(4, 8))[:-1]} {i}"
    summary = sentence(rng, 12)
    if i % 100 == 7 and titles:  # a near-duplicate of the previous atom: one word changed
        title = titles[-1] + "s"
        summary = summaries[-1].replace(" the ", " this ", 1) if " the " in summaries[-1] else summaries[-1] + " Again."
    titles.append(title)
    summaries.append(summary)
    atom_id = atoms.slugify(title)
    status = STATUSES[i % len(STATUSES)] if i % 10 else "draft"
    related = [rng.choice(titles) for _ in range(rng.randint(0, 3))] if len(titles) > 3 else []
    words = rng.randint(250, 950)
    sections = TYPE_SECTIONS[atype]
    per = max(20, words // len(sections))
    body = [paragraph(rng, 25), ""]
    for heading in sections:
        body += [f"## {heading}", ""]
        if heading == "FAQ":
            for _ in range(rng.randint(1, 4)):
                body += [f"**Q:** {sentence(rng, 8)[:-1]}?", f"**A:** {paragraph(rng, 30)}", ""]
        elif heading == "Template":
            body += [
                "```yaml",
                "apiVersion: v1",
                "kind: ConfigMap",
                "metadata:",
                f"  name: cm-{i}",
                "data:",
                f"  timeout.reconciliation: {rng.randint(60, 600)}s",
                "```",
                "",
                paragraph(rng, per),
            ]
        elif heading in ("Steps", "How to resolve", "Actions"):
            body += [f"{n}. {paragraph(rng, per // 4)}" for n in range(1, 5)]
        else:
            body.append(paragraph(rng, per))
        body.append("")
    if i % 100 == 42:  # a broken one: a question without an answer
        body += ["**Q:** Is this answered?", ""]
    fm = [
        "---",
        f"id: {atom_id}",
        f'title: "{title}"',
        f"type: {atype}",
        f"summary: {summary}",
        "author: Bench Generator",
        f"created: 2026-0{1 + i % 9}-{1 + i % 28:02d}",
        f"status: {status}",
        f"reviewed_by: [{'Jane Doe' if status == 'validated' else ''}]",
        f"tags: [{rng.choice(WORDS)}, {rng.choice(WORDS)}]",
        "related: [" + ", ".join(f'"{t}"' for t in related) + "]",
        "sources:",
        f"  - document: docs/{rng.choice(WORDS)}.md",
        f'    heading: "{title}"',
        "generator: {kind: import}",
        "---",
    ]
    return atype, atom_id, "\n".join(fm) + "\n" + "\n".join(body).rstrip() + "\n"


def generate(root: Path, n: int) -> int:
    rng = random.Random(42)
    titles: list[str] = []
    summaries: list[str] = []
    for i in range(n):
        atype, atom_id, text = make_atom(i, rng, titles, summaries)
        path = root / "atoms" / atype / f"{atom_id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "kb.yaml").write_text("{}\n", encoding="utf-8")
    return n


CPU: dict[str, float] = {}


def timed(fn, name: str | None = None):
    """Wall time; the CPU time of this process is kept in CPU[name] (steadier on a busy machine)."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    if name:
        CPU[name] = time.process_time() - c0
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true", help="cProfile the check without duplicates")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-check-bench-") as tmp:
        root = Path(tmp)
        _, t_gen = timed(lambda: generate(root, args.n))
        ws = Workspace.at(root)
        settings = Settings.load(root)
        files = ws.atom_files()
        print(f"generated {len(files)} atoms in {t_gen:.1f}s")

        def reference() -> None:
            for p in files:
                raw = atoms.split(p.read_bytes().decode("utf-8"))
                atoms.load_yaml(raw)

        reference()  # warm the page cache
        _, t_ref = timed(reference, "ref")
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            check.run(settings, ws, Reporter(), duplicates=False)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        rep_nodup, t_nodup = timed(lambda: check.run(settings, ws, Reporter(), duplicates=False), "nodup")
        rep_dup, t_dup = timed(lambda: check.run(settings, ws, Reporter(), duplicates=True), "dup")
        from pipeline.stages.check.context import AtomInfo as _Info
        from pipeline.stages.check.duplicates import comparison_keys, near_duplicate_pairs
        from pipeline.stages.check.stage import _light

        infos = [_Info(path=p, rel=str(p), checked=True) for p in files]
        for info in infos:
            _light(info.path, info)
        _, keys = comparison_keys(infos)
        pairs, t_block = timed(lambda: near_duplicate_pairs(keys, settings.check.duplicate_threshold), "block")
        env = dict(os.environ, KB_WORKSPACE=str(root))
        kb = Path(sys.executable).with_name("kb")
        proc, t_cli = timed(
            lambda: subprocess.run([str(kb), "check", "--format", "json"], env=env, capture_output=True, text=True)
        )
        n = len(files)
        print(f"reference (read + split + YAML): {n / t_ref:8.0f} atoms/s  ({t_ref:.2f}s)")
        print(
            f"check, no near-duplicates:       {n / t_nodup:8.0f} atoms/s  ({t_nodup:.2f}s)  "
            f"{t_nodup / t_ref:.2f}x reference; {rep_nodup}"
        )
        print(
            f"check, with near-duplicates:     {n / t_dup:8.0f} atoms/s  ({t_dup:.2f}s)  "
            f"{t_dup / t_nodup:.2f}x the no-duplicate run; {rep_dup}"
        )
        print(
            f"near-duplicate blocking alone:   {n / t_block:8.0f} atoms/s  ({t_block:.2f}s), "
            f"{len(pairs)} pair(s) found (~{n // 100} planted)"
        )
        print(f"CLI kb check --format json:      {n / t_cli:8.0f} atoms/s  ({t_cli:.2f}s, exit {proc.returncode})")
        print(
            f"target 2000 atoms/s: with duplicates {n / t_dup / 2000:.2f}x target, "
            f"without {n / t_nodup / 2000:.2f}x target (wall clock)"
        )
        print(
            f"CPU time of this process: reference {n / CPU['ref']:.0f}/s, no duplicates {n / CPU['nodup']:.0f}/s, "
            f"with duplicates {n / CPU['dup']:.0f}/s ({CPU['dup'] / CPU['nodup']:.2f}x), "
            f"blocking {n / CPU['block']:.0f}/s; with duplicates {n / CPU['dup'] / 2000:.2f}x target"
        )


if __name__ == "__main__":
    main()
