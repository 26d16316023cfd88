"""Review-site build time for 1,000 generated atoms: kb's hooks vs a plain mkdocs build.

Both builds use the same mkdocs-material configuration (search, tags, offline) and the same
atom Markdown. The plain build renders the atom files as they are; kb's build adds everything
the hooks do (parsing and validating atoms, header, FAQ, related links, sources box, transcript
pages, index pages, sanitising). Target: ratio <= 1.3. Prints figures, asserts nothing.

    .venv/bin/python bench/site_bench.py [--atoms 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.atoms import dump_yaml, slugify  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.models import ATOM_TYPES, TYPE_SECTIONS  # noqa: E402
from pipeline.reporting import Reporter  # noqa: E402
from pipeline.stages import site  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "sync repo server manifest cluster timeout memory helm chart controller application secret key "
    "deploy rollout namespace pod restart limit queue refresh cache token webhook git branch commit "
    "health status degraded progressing retry backoff config map label selector resource quota"
).split()


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def make_workspace(root: Path, n_atoms: int, n_interviews: int = 10) -> list[str]:
    """A workspace with ``n_atoms`` atoms of every type quoting ``n_interviews`` transcripts."""
    rng = random.Random(7)
    (root / "site").mkdir(parents=True)
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    (root / "site" / "index.md").write_text("# Bench knowledge base\n", encoding="utf-8")
    segments: dict[str, list[dict]] = {}
    for i in range(n_interviews):
        iid = f"2026-01-{i + 1:02d}-expert{i}"
        folder = root / "interviews" / iid
        folder.mkdir(parents=True)
        folder.joinpath("interview.yaml").write_text(
            dump_yaml(
                {
                    "id": iid,
                    "title": f"Interview {i}",
                    "date": f"2026-01-{i + 1:02d}",
                    "people": [
                        {"name": f"Expert {i}", "role": "expert"},
                        {"name": "Interviewer", "role": "interviewer"},
                    ],
                }
            ),
            encoding="utf-8",
        )
        segs = []
        t = 0.0
        for k in range(300):
            text = sentence(rng, rng.randint(8, 25))
            segs.append(
                {
                    "id": k,
                    "start": round(t, 2),
                    "end": round(t + 6, 2),
                    "speaker": "S1" if k % 2 else "S2",
                    "text": text,
                }
            )
            t += 6.5
        segments[iid] = segs
        folder.joinpath("transcript.json").write_text(
            json.dumps(
                {
                    "schema_version": 1,
                    "interview": iid,
                    "source": {"kind": "import", "file": "x.vtt"},
                    "speakers": [
                        {"id": "S1", "name": f"Expert {i}", "role": "expert"},
                        {"id": "S2", "name": "Interviewer", "role": "interviewer"},
                    ],
                    "segments": segs,
                }
            ),
            encoding="utf-8",
        )
    titles = [f"{sentence(rng, 5)[:-1]} {n}" for n in range(n_atoms)]
    paths = []
    for n, title in enumerate(titles):
        atype = ATOM_TYPES[n % len(ATOM_TYPES)]
        iid = sorted(segments)[n % n_interviews]
        seg = segments[iid][(n * 7) % 299 + 1]
        meta = {
            "id": slugify(title),
            "title": title,
            "type": atype,
            "summary": sentence(rng, 12),
            "author": f"Expert {n % n_interviews}",
            "created": f"2026-02-{n % 28 + 1:02d}",
            "version": 1 + n % 3,
            "status": ("draft", "in-review", "validated", "archived")[n % 4],
            "reviewed_by": ["Reviewer"] if n % 4 == 2 else [],
            "tags": rng.sample(WORDS, 3),
            "related": [titles[(n + 1) % n_atoms], titles[(n + 37) % n_atoms]],
            "sources": [
                {
                    "interview": iid,
                    "speaker": f"Expert {n % n_interviews}",
                    "start": seg["start"],
                    "end": seg["end"],
                    "quote": seg["text"],
                }
            ],
        }
        body = [sentence(rng, 30), ""]
        for heading in TYPE_SECTIONS[atype]:
            body += [f"## {heading}", ""]
            if heading == "FAQ":
                for _ in range(3):
                    body += [f"**Q:** {sentence(rng, 10)[:-1]}?", f"**A:** {sentence(rng, 30)}", ""]
            elif heading == "Template":
                body += ["```yaml", "resources:", "  limits:", "    memory: 2Gi", "```", ""]
            else:
                body += [" ".join(sentence(rng, 20) for _ in range(6)), ""]
        path = root / "atoms" / atype / f"{meta['id']}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\n" + dump_yaml(meta) + "---\n" + "\n".join(body), encoding="utf-8")
        paths.append(path.relative_to(root).as_posix())
    return paths


def plain_build(root: Path, out: Path, lean: bool = False) -> float:
    """mkdocs build of the same atom Markdown with the same config, without kb's hooks.

    ``lean`` keeps only title and tags in the front matter: material then renders no page-status
    element per nav item (it does for a ``status`` key), as for kb's generated pages.
    """
    import yaml
    from mkdocs.commands.build import build
    from mkdocs.config.base import load_config

    docs = out / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    shutil.copytree(root / "site", docs)
    shutil.copytree(root / "atoms", docs / "atoms")
    if lean:
        for path in (docs / "atoms").rglob("*.md"):
            _, fm, body = path.read_text(encoding="utf-8").split("---\n", 2)
            meta = yaml.safe_load(fm)
            path.write_text(
                "---\n" + dump_yaml({"title": meta["title"], "tags": meta["tags"]}) + "---\n" + body, encoding="utf-8"
            )
    config = load_config(str(root / "mkdocs.yml"), docs_dir=str(docs), site_dir=str(out / "site"), strict=False)
    started = time.perf_counter()
    build(config)
    return time.perf_counter() - started


def kb_build(root: Path) -> float:
    ws = Workspace.at(root)
    started = time.perf_counter()
    site.run(Settings.load(root), ws, Reporter(), strict=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lean", action="store_true", help="Also time a plain build with only title and tags.")
    args = parser.parse_args()
    logging.getLogger("mkdocs").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="kb-site-bench-") as tmp:
        root = Path(tmp) / "ws"
        started = time.perf_counter()
        make_workspace(root, args.atoms)
        print(f"generated {args.atoms} atoms and 10 transcripts in {time.perf_counter() - started:.1f} s", flush=True)
        plain, ours = [], []
        for r in range(args.rounds):  # alternate the order: a busy neighbour hurts whoever runs then
            if r % 2:
                ours.append(kb_build(root))
                plain.append(plain_build(root, Path(tmp) / "plain"))
            else:
                plain.append(plain_build(root, Path(tmp) / "plain"))
                ours.append(kb_build(root))
            print(f"round {r + 1}: plain mkdocs {plain[-1]:.1f} s, kb site {ours[-1]:.1f} s", flush=True)
        lean = [plain_build(root, Path(tmp) / "lean", lean=True) for _ in range(args.rounds)] if args.lean else []
        pages = sum(1 for _ in (root / "build" / "site").rglob("*.html"))
        best_plain, best_ours = min(plain), min(ours)
        print(f"plain mkdocs build (same Markdown, no hooks): {best_plain:.2f} s")
        print(f"kb site build ({pages} pages incl. transcripts and indexes): {best_ours:.2f} s")
        print(f"ratio kb/plain: {best_ours / best_plain:.2f} (target <= 1.3)")
        if lean:
            print(
                f"plain build, front matter cut to title and tags: {min(lean):.2f} s; ratio kb/lean: {best_ours / min(lean):.2f}"
            )


if __name__ == "__main__":
    main()
