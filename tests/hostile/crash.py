"""kill -9 at random points of a stage, then check what is on disk; and a full disk during export.

usage: python crash.py STAGE WORKDIR RUNS SEED        STAGE: export | distill | import-docs | transcribe
       python crash.py disk-full WORKDIR MODE          MODE: ulimit | tmpfs

The stage's code is imported once; each run is a forked child (a real process writing real
files) killed with SIGKILL at a seeded random point of its own progress, so the kills land mid-run
by construction, however slow the machine: a clean run counts the file writes it makes inside the
workspace (opens for writing, renames, removes, mkdirs: seen through an audit hook, nothing
patched); each killed run picks write k of them and dies at it: every other run right there (before the
write happens: between a temp file and its rename, say), the others after a random delay of up
to one write's share of the run (inside a write, inside DuckDB's). After every kill: no bundle in dist/ fails
validation, every atom and transcript on disk parses. Then a normal run must clean the leftovers
(and say so) and finish. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE.parent / "data"
CONTEXT = DATA / "broken" / "_context"
PODMAN = DATA / "docs" / "podman" / "troubleshooting.md"
SERVICE_FAQ = DATA / "service" / "workspace" / "atoms" / "faq"
VTT = DATA / "transcripts" / "vtt" / "sample.vtt"


def _settings(ws):
    from pipeline.config import Settings

    return Settings.load(ws.root)


def setup(stage: str, root: Path):
    from pipeline.reporting import Reporter
    from pipeline.stages import add
    from pipeline.workspace import Workspace

    shutil.copytree(CONTEXT, root / "ws")
    ws = Workspace.at(root / "ws")
    docs = root / "docs"
    docs.mkdir()
    lines = PODMAN.read_text(encoding="utf-8").splitlines(keepends=True)
    (docs / "troubleshooting.md").write_text("".join(lines[:166]), encoding="utf-8")  # its first 5 entries
    if stage in ("export", "disk-full"):
        (ws.atoms_dir / "faq").mkdir(exist_ok=True)
        for atom in sorted(SERVICE_FAQ.glob("*.md"))[:2]:
            shutil.copy(atom, ws.atoms_dir / "faq" / atom.name)
    if stage == "transcribe":
        add.run(_settings(ws), ws, Reporter(), VTT, interview_id="crash-vtt")
    return ws


def operation(stage: str, ws, embedder):
    from pipeline.reporting import Reporter

    settings = _settings(ws)
    if stage == "export":
        from pipeline.stages import export

        return lambda r=None: export.run(settings, ws, r or Reporter(), embedder=embedder, force=True)
    if stage == "distill":
        from pipeline.stages import distill

        return lambda r=None: distill.run(settings, ws, r or Reporter(), backend="extractive", force=True)
    if stage == "import-docs":
        from pipeline.stages import import_docs

        return lambda r=None: import_docs.run(settings, ws, r or Reporter(), ws.root.parent / "docs")
    if stage == "transcribe":
        from pipeline.stages import transcribe

        return lambda r=None: transcribe.run(settings, ws, r or Reporter(), ["crash-vtt"], force=True)
    raise ValueError(stage)


def before_run(stage: str, ws, rng: random.Random) -> None:
    """Make each run do real writes: a fresh import, sometimes a cold embedding cache."""
    if stage == "import-docs":  # the outputs go, a killed writer's temp files stay: the next run must clean them
        for folder in (ws.atoms_dir / "error", ws.atoms_dir / "troubleshooting-tip", ws.state_dir / "state"):
            _remove_outputs(folder)
        shutil.copytree(CONTEXT / "atoms", ws.atoms_dir, dirs_exist_ok=True)
    if stage == "export" and rng.random() < 0.2:
        shutil.rmtree(ws.state_dir / "embeddings", ignore_errors=True)


def _remove_outputs(folder: Path) -> None:
    """Delete what a run wrote under ``folder``, keeping kb's temp files (``.kb-tmp-<pid>-...``) and their folders."""
    from pipeline.workspace import TEMP_PREFIX

    for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
        if any(part.startswith(TEMP_PREFIX) for part in path.relative_to(folder).parts):
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def problems(ws, embedder) -> list[str]:
    """What on disk would hurt a user: a bundle that fails validation, a half atom or transcript."""
    from pipeline import atoms
    from pipeline.errors import KbError
    from pipeline.index.bundle import Bundle
    from pipeline.models import Transcript

    found = []
    for path in sorted((ws.root / "dist").glob("kb-*.duckdb")):
        try:
            Bundle.load(path, embedder)
        except KbError as exc:
            found.append(f"{path.name}: {exc}")
    for path in ws.atom_files():
        if path.name.startswith("."):
            continue
        try:
            atoms.read(path)
        except KbError as exc:
            found.append(f"{path.name}: {exc}")
    for path in ws.interviews_dir.glob("*/transcript.json"):
        try:
            Transcript.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            found.append(f"{path}: {str(exc)[:200]}")
    return found


_WRITE_EVENTS = frozenset({"os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate", "shutil.rmtree"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC


def _is_write(event: str, args: tuple, root: str) -> bool:
    """An audit event that changes a file under ``root`` (kb's own writes: its progress markers)."""
    if event == "open":
        path, mode, flags = args
        if not ((isinstance(mode, str) and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS)):
            return False
    elif event not in _WRITE_EVENTS:
        return False
    else:
        path = args[0]
    if isinstance(path, int):
        return False
    try:
        return os.fsdecode(path).startswith(root)
    except TypeError:
        return False


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch_writes(root: Path, counted: list[int], kill_at: int | None, delay: float) -> None:
    """In the child: count its writes under ``root``; at write ``kill_at``, SIGKILL itself (after ``delay``)."""
    prefix = str(root) + os.sep

    def hook(event: str, args: tuple) -> None:
        try:
            if not _is_write(event, args, prefix):
                return
        except Exception:  # noqa: BLE001 - an audit hook must never fail the operation it watches
            return
        counted[0] += 1
        if counted[0] != kill_at:
            return
        if delay <= 0:
            _kill_self()
        threading.Thread(target=lambda: (time.sleep(delay), _kill_self()), daemon=True).start()

    sys.addaudithook(hook)


def _fork(
    run, root: Path | None = None, kill_at: int | None = None, delay: float = 0.0, count_to: Path | None = None
) -> int:
    pid = os.fork()
    if pid == 0:  # the child: run, exit without cleanup handlers
        code = 0
        counted = [0]
        try:
            if root is not None:
                _watch_writes(root, counted, kill_at, delay)
            run()
        except BaseException:
            code = 1
        if count_to is not None:
            count_to.write_text(str(counted[0]))
        os._exit(code)
    return pid


def crash(stage: str, root: Path, runs: int, seed: int) -> dict:
    from pipeline.reporting import Reporter
    from pipeline.workspace import leftovers

    embedder = _embedder() if stage == "export" else None
    ws = setup(stage, root)
    run = operation(stage, ws, embedder)
    rng = random.Random(seed)
    clean, writes = _clean_runs(stage, ws, run, rng, root / "writes.txt")
    killed_running, bad, left_seen = 0, [], 0
    for i in range(runs):
        before_run(stage, ws, rng)
        kill_at = rng.randint(1, writes)
        delay = 0.0 if i % 2 == 0 else rng.uniform(0, clean / writes)  # half at the write itself
        pid = _fork(run, ws.root, kill_at, delay)
        _, status = os.waitpid(pid, 0)
        killed_running += os.WIFSIGNALED(status)
        bad += problems(ws, embedder)
        left_seen += bool(leftovers([ws.root], depth=4))
    reporter = Reporter()
    before_run(stage, ws, rng)  # may delete folders holding leftovers (import-docs' atoms/error/): count after it
    left = leftovers([ws.root], depth=4)
    error = None
    try:
        run(reporter)
    except Exception as exc:  # reported as data, asserted by the test
        error = f"{type(exc).__name__}: {exc}"
    return {
        "stage": stage,
        "runs": runs,
        "clean_run_s": round(clean, 3),
        "writes_in_clean_run": writes,
        "killed_while_running": killed_running,
        "runs_with_leftovers": left_seen,
        "leftovers_before_final": [str(p.relative_to(ws.root)) for p in left],
        "cleanup_reported": any("leftover temp file" in m for _, m in reporter.lines),
        "final_error": error,
        "leftovers_after_final": [str(p.relative_to(ws.root)) for p in leftovers([ws.root], depth=4)],
        "problems": bad + problems(ws, embedder),
    }


def _clean_runs(stage: str, ws, run, rng: random.Random, count_to: Path) -> tuple[float, int]:
    """Two clean runs (the first warms caches up); the second's seconds and the fewest writes of either."""
    counts, seconds = [], 0.0
    for _ in range(2):
        before_run(stage, ws, rng)
        started = time.monotonic()
        pid = _fork(run, ws.root, count_to=count_to)
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - started
        assert os.waitstatus_to_exitcode(status) == 0, "a clean run fails"
        counts.append(int(count_to.read_text()))
    assert min(counts) > 0, "a clean run wrote nothing in the workspace"
    return seconds, min(counts)


def _embedder():
    from pipeline.backends.embed import load_embedder
    from pipeline.config import Settings

    return load_embedder(Settings.load(None))


def in_child(out: Path, limit_bytes: int | None, fn) -> dict:
    """Run ``fn`` in a forked child (whose files may not grow past ``limit_bytes``, ``ulimit -f``); its outcome:
    ``{"code": 0}``, a KbError's ``code 1, type, message, hint``, or anything else as ``code -1``."""
    import resource

    from pipeline.errors import KbError

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        result: dict = {}
        try:
            if limit_bytes is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
            fn()
            result = {"code": 0}
        except KbError as exc:
            result = {"code": 1, "type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        except BaseException as exc:
            result = {"code": -1, "type": type(exc).__name__, "message": str(exc)[:500]}
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # only the soft limit was lowered
        out.write_text(json.dumps(result))
        os._exit(0)
    os.waitpid(pid, 0)
    return json.loads(out.read_text())


def disk_full(root: Path, mode: str) -> dict:
    """Export onto a full disk (a 3 MB tmpfs with a filler file) or under ``ulimit -f``."""

    from pipeline.workspace import leftovers

    embedder = _embedder()
    ws = setup("disk-full", root)
    run = operation("export", ws, embedder)
    dist = ws.root / "dist"
    dist.mkdir()
    if mode == "tmpfs":
        if subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(dist)], capture_output=True
        ).returncode:
            return {"skipped": "mount -t tmpfs is not allowed here"}
        (dist / "filler").write_bytes(b"\0" * (3 * 1024 * 1024 - 64 * 1024))
    failed = in_child(root / "child.json", 256 * 1024 if mode == "ulimit" else None, run)
    after_fail = sorted(p.name for p in dist.iterdir() if p.name != "filler")
    if mode == "tmpfs":
        (dist / "filler").unlink()  # free the space
    error = None
    try:
        report = run()
    except Exception as exc:
        error, report = f"{type(exc).__name__}: {exc}", None
    result = {
        "mode": mode,
        "failed_run": failed,
        "dist_after_failure": after_fail,
        "next_run_error": error,
        "bundle": report.path.name if report else None,
        "problems": problems(ws, embedder),
        "leftovers": [str(p) for p in leftovers([ws.root], depth=4)],
    }
    if mode == "tmpfs":
        subprocess.run(["umount", str(dist)], capture_output=True)
    return result


def main() -> None:
    stage, root = sys.argv[1], Path(sys.argv[2])
    root.mkdir(parents=True, exist_ok=True)
    if stage == "disk-full":
        print(json.dumps(disk_full(root, sys.argv[3])))
    else:
        print(json.dumps(crash(stage, root, int(sys.argv[3]), int(sys.argv[4]))))


if __name__ == "__main__":
    main()
