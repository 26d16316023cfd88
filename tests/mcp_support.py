"""The bundle the MCP, tools and agent tests share: the service test atoms (cut from the real Argo CD
and Podman docs) plus the shipped sample interview (Ship It! #59) and an atom citing it, exported once."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

DATA = Path(__file__).parent / "data"


def make_workspace(root: Path) -> Path:
    shutil.copytree(DATA / "service" / "workspace", root)
    shutil.copytree(DATA / "mcp" / "interviews", root / "interviews")
    shutil.copytree(DATA / "mcp" / "atoms", root / "atoms", dirs_exist_ok=True)
    return root


def build(base: Path) -> tuple[Path, Path]:
    """(workspace root, bundle path) exported with the session's embedder."""
    from pipeline.config import Settings
    from pipeline.reporting import Reporter
    from pipeline.stages import export
    from pipeline.workspace import Workspace
    from tests.bundle_support import embedder

    ws = make_workspace(base / "ws")
    out = ws / "dist" / "kb-test.duckdb"
    export.run(Settings.load(ws), Workspace.at(ws, discover=False), Reporter(), out=out, embedder=embedder())
    return ws, out


def load(bundle: Path):
    from pipeline.index.bundle import Bundle
    from tests.bundle_support import embedder

    return Bundle.load(bundle, embedder())


@functools.cache
def built_once() -> tuple[Path, Path]:
    """One export per test session, shared by the MCP, tools and agent test modules."""
    return build(Path(tempfile.mkdtemp(prefix="kb-mcp-tests-")))


def tool_context(**extras):
    from pipeline.config import Settings
    from pipeline.tools.registry import ToolContext

    ws, bundle = built_once()
    return ToolContext(settings=Settings.load(ws), index=_loaded(bundle), extras=dict(extras))


@functools.cache
def _loaded(bundle: Path):
    return load(bundle)
