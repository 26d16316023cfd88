"""Runs hostile cases in this process under a 1 GB RLIMIT_DATA; prints one JSON line per case.

Started by tests/hostile/test_hostile_files.py as a subprocess (the memory cap must not apply
to pytest). For each case: a fresh workspace (tests/data/broken/_context), a folder beside it
holding ``secret.md`` that nothing may open, the case's file, the real CLI in-process
(``pipeline.cli.main``). An audit hook records every ``open`` so the test can assert that nothing
outside the workspace was read (the secret folder) or written (anywhere outside it).

usage: python worker.py WORKDIR CASE_NAME...
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).parent
FILES = HERE / "files"
CONTEXT = HERE.parent / "data" / "broken" / "_context"
SECRET = "SECRET-TOKEN-17-do-not-publish"
MEMORY_CAP = 1 << 30

_opens: list[tuple[str, str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        path, mode, flags = (list(args) + [None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        _opens.append((os.fsdecode(path), "w" if writes else "r"))


# ---------------------------------------------------------------------------------------------
# generated inputs (too big to keep in git)


CHANGELOG = HERE.parent / "data" / "transcripts" / "changelog"  # real interviews (tests/data/ATTRIBUTION.md)


def _real_turns() -> list[tuple[str, str]]:
    """(speaker, cue text) from the two Changelog transcripts: their words, in cues of about 12 words."""
    import re

    turns: list[tuple[str, str]] = []
    speaker = "Speaker"
    for path in sorted(CHANGELOG.glob("*.md")):
        for para in path.read_text(encoding="utf-8").split("\n\n"):
            found = re.match(r"\*\*(.+?):\*\*\s*(.*)", para.strip(), re.S)
            if found:
                speaker, para = found.group(1), found.group(2)
            words = re.sub(r"\\\[[0-9:]+\\\]", "", para).split()
            turns += [(speaker, " ".join(words[i : i + 12])) for i in range(0, len(words), 12)]
    return turns


def _vtt(n: int) -> str:
    """A real-size WebVTT of ``n`` cues: the Changelog interviews' own words and speakers, repeated
    to length (both hold about 1,500 cues: 5,000 is a day-long workshop), timed at 2.6 words a second."""
    turns = _real_turns()
    lines = ["WEBVTT", ""]
    t = 0.0
    stamp = lambda s: f"{int(s // 3600):02d}:{int(s // 60) % 60:02d}:{s % 60:06.3f}"  # noqa: E731
    for i in range(n):
        speaker, text = turns[i % len(turns)]
        end = t + max(0.8, len(text.split()) / 2.6)
        lines += [f"{stamp(t)} --> {stamp(end)}", f"<v {speaker}>{text}", ""]
        t = end + 0.1
    return "\n".join(lines)


def gen(name: str, dest: Path, out: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if name == "atom-50mb":
        head = "---\nid: atom-huge\ntitle: Huge\ntype: faq\ncreated: 2026-03-04\n---\n"
        with open(dest, "w", encoding="utf-8") as fh:
            fh.write(head + ("word " * 19 + "\n") * 1000)
            fh.truncate(50 * 1024 * 1024)  # the rest sparse: 50 MB on paper, cheap to make
    elif name == "symlink-outside":
        (out / "atom.md").write_text(
            f"---\nid: linked\ntitle: Linked\ntype: faq\ncreated: 2026-03-04\nsummary: {SECRET}\n---\n{SECRET}\n"
        )
        dest.symlink_to(out / "atom.md")
    elif name == "symlinked-transcript":
        dest.write_text(
            "id: hostile\ntitle: Linked\ndate: 2026-03-04\nmedia:\n  - kind: transcript\n    file: linked.md\n"
            f"    sha256: '{'0' * 64}'\n    bytes: 10\n    format: markdown\n"
        )
        (dest.parent / "linked.md").symlink_to(out / "secret.md")
    elif name == "vtt-1m-cues":
        dest.write_text("WEBVTT\n\n" + "00:00.000 --> 00:01.000\nx\n\n" * 1_000_000)
    elif name == "whisper-1m-segments":
        dest.write_text('{"segments": [' + ",".join(['{"start":0,"end":1,"text":"a"}'] * 1_000_000) + "]}")
    elif name == "whisper-2m-words":
        words = ",".join(['{"word":"a","start":0,"end":1}'] * 1_100_000)
        dest.write_text('{"segments": [{"start":0,"end":1,"text":"a","words":[' + words + "]}]}")
    elif name == "vtt-5000-cues":
        dest.write_text(_vtt(5000))
    else:
        raise ValueError(name)


# ---------------------------------------------------------------------------------------------


def run_case(case, root: Path, tmp: Path) -> dict:
    """One case; ``tmp`` is this worker's own TMPDIR (under ``root``), emptied after the case."""
    from pipeline.cli import main

    assert tmp.is_relative_to(root) and Path(tempfile.gettempdir()) == tmp, "TMPDIR must be the worker's own folder"

    base = root / case.name
    ws, out, typed = base / "ws", base / "outside", base / "typed"
    shutil.copytree(CONTEXT, ws)
    out.mkdir()
    typed.mkdir()
    (out / "secret.md").write_text(f"**[00:00:01] Mallory:** {SECRET}\n")
    dest = (typed / case.dest.removeprefix("TYPED/")) if case.dest.startswith("TYPED/") else ws / case.dest
    if case.source.startswith("gen:"):
        gen(case.source[4:], dest, out)
    elif case.source:
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = (FILES / case.source).read_bytes().replace(b"OUTSIDE", os.fsencode(out))
        dest.write_bytes(data)
    before_out = sorted(p.name for p in out.iterdir())
    results = []
    os.chdir(ws)
    for argv in _commands(case.argv):
        argv = [str(dest) if a == "FILE" else str(out) if a == "OUT" else a for a in argv]
        _opens.clear()
        stdout, stderr = io.StringIO(), io.StringIO()
        tb = None
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(["--workspace", str(ws), *argv])
            except BaseException:  # a traceback is a bug: reported, not raised
                code, tb = -1, traceback.format_exc()
        opens = list(_opens)
        results.append(
            {"argv": argv, "code": code, "output": (stdout.getvalue() + stderr.getvalue())[-4000:], "traceback": tb}
        )
    os.chdir(root)
    allowed_reads = [str(ws), str(typed)]
    outside_reads = sorted({p for p, _ in opens if p.startswith(str(out))})
    outside_writes = sorted(
        {
            p
            for p, m in opens
            if m == "w" and not any(p.startswith(a) for a in allowed_reads) and not p.startswith("/dev/")
        }
    )
    leaked = [
        str(p.relative_to(ws))
        for p in ws.rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_size < 5_000_000 and SECRET.encode() in p.read_bytes()
    ]
    tmp_left = sorted(os.listdir(tmp))
    transcripts = {  # interview id -> words in its segments, for the real-size cases
        t.parent.name: sum(len(seg["text"].split()) for seg in json.loads(t.read_text(encoding="utf-8"))["segments"])
        for t in ws.glob("interviews/*/transcript.json")
    }
    result = {
        "transcript_words": transcripts,
        "name": case.name,
        "runs": results,
        "outside_reads": outside_reads,
        "outside_writes": outside_writes,
        "secret_in_workspace": leaked,
        "outside_changed": sorted(p.name for p in out.iterdir()) != before_out,
        "system_temp_left": tmp_left,
        "max_rss_mb": _peak_rss_mb(),
    }
    shutil.rmtree(base, ignore_errors=True)
    for left in tmp_left:  # only inside the worker's own TMPDIR (asserted above)
        shutil.rmtree(tmp / left, ignore_errors=True)
    return result


def _peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry over the parent's across exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def _commands(argv: tuple[str, ...]) -> list[list[str]]:
    cmds: list[list[str]] = [[]]
    for a in argv:
        if a == "&&":
            cmds.append([])
        else:
            cmds[-1].append(a)
    return cmds


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    names = set(sys.argv[2:])
    sys.path.insert(0, str(HERE))
    from cases import CASES

    tmp = (root / "system-tmp").resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP, MEMORY_CAP))
    sys.addaudithook(_audit)
    for case in CASES:
        if names and case.name not in names:
            continue
        print(json.dumps(run_case(case, root, tmp)), flush=True)


if __name__ == "__main__":
    main()
