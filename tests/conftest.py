"""Shared test setup: offline, one thread, and a helper to run the real CLI in-process."""

from __future__ import annotations

import os

# Offline and single-threaded before any heavy library is imported (ENVIRONMENT.md).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _var in [v for v in os.environ if v.startswith("KB_") and v != "KB_UPDATE_GOLDEN"]:
    os.environ.pop(_var)  # a developer's own settings must not leak into tests

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

DATA = Path(__file__).parent / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def kb(capsys):
    """Run ``kb ARGS...`` in-process through the real entry point; returns exit code and output."""
    from pipeline.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def workspace(tmp_path, kb):
    """A fresh workspace made by ``kb init``."""
    ws = tmp_path / "ws"
    result = kb("init", ws)
    assert result.exit_code == 0, result.stderr
    return ws


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test (or fixture) stopped by a missing optional extra is skipped, naming the extra.

    So a core-only install (``pip install -e .``) runs everything else and skips these; with the
    extra installed, the same error fails the test as usual (see ``tests/extras.py``).
    """
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    from tests.extras import missing_extra_of

    extra = missing_extra_of(call.excinfo.value)
    if extra is not None:
        report.outcome = "skipped"
        report.longrepr = (
            str(item.path),
            item.location[1],
            f"needs the '{extra}' extra (pip install 'kb-atoms[{extra}]')",
        )
