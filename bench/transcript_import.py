"""How much the transcript importers and `kb transcribe` add over the parsing libraries themselves.

References measured in the same run: webvtt-py reading a WebVTT file, and markdown-it-py parsing
a Changelog transcript. Printed as ratios (kb / library); nothing is asserted.
Run: .venv/bin/python bench/transcript_import.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data" / "transcripts"


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import webvtt
    from markdown_it import MarkdownIt

    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import add, transcribe
    from pipeline.transcripts import importers
    from pipeline.workspace import Workspace

    vtt = DATA / "vtt" / "spec-example.vtt"
    md = DATA / "changelog" / "ship-it-21.md"
    md_text = md.read_text(encoding="utf-8")
    parser = MarkdownIt("commonmark")

    ref_vtt = best_of(lambda: [webvtt.read(str(vtt)) for _ in range(50)])
    kb_vtt = best_of(lambda: [importers.import_file(vtt, "b") for _ in range(50)])
    ref_md = best_of(lambda: parser.parse(md_text))
    kb_md = best_of(lambda: importers.import_file(md, "b"))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "kb.yaml").write_text("{}\n")
        ws = Workspace.at(root)
        settings = Settings.load(root)
        add.run(
            settings,
            ws,
            Reporter(),
            md,
            interview_id="bench",
            experts=["Chris Evans", "Stephen Whitworth"],
            interviewers=["Gerhard Lazu"],
        )
        stage = best_of(lambda: transcribe.run(settings, ws, Reporter(), ["bench"], force=True))
        fresh = best_of(lambda: transcribe.run(settings, ws, Reporter(), ["bench"]))
        shutil.rmtree(root / ".kb", ignore_errors=True)

    print(f"WebVTT import (spec example) vs webvtt-py read:         {kb_vtt / ref_vtt:5.2f}x")
    print(f"Changelog import (ship-it-21.md) vs markdown-it parse:  {kb_md / ref_md:5.2f}x")
    print(f"kb transcribe --force (import+map+write) vs import:    {stage / kb_md:5.2f}x")
    print(f"kb transcribe when fresh (hash + compare) vs import:    {fresh / kb_md:5.2f}x")


if __name__ == "__main__":
    main()
