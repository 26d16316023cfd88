"""A full disk (``ulimit -f`` in a forked child: no root, no tmpfs) while ``kb site`` writes the site.

The build fails with Error/Hint naming the site folder and the free space, the site served before
is still there whole (the new one is built beside it and swapped in only when complete), nothing
half-built is left, and the next build with space succeeds without manual cleanup.
"""

from __future__ import annotations

import os

import pytest

from pipeline.config import Settings
from pipeline.reporting import Reporter
from pipeline.stages import site
from pipeline.workspace import leftovers
from tests.hostile.crash import in_child
from tests.stages.site.test_site import FINDINGS, make_workspace

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork() for the ulimit -f child")
pytest.importorskip("mkdocs", reason="needs kb-atoms[site]")


def test_a_full_disk_during_kb_site_is_error_hint_and_the_old_site_stays(tmp_path):
    ws = make_workspace(tmp_path)
    settings = Settings.load(ws.root)

    def build() -> None:
        site.run(settings, ws, Reporter(), strict=False, findings=FINDINGS)

    build()  # the site a reader has now
    index = ws.root / "build" / "site" / "index.html"
    before = index.read_bytes()
    failed = in_child(tmp_path / "child.json", 8 * 1024, build)  # no file of the new site may pass 8 KB
    assert failed["code"] == 1 and failed["type"] == "DiskFullError", failed
    assert "site" in failed["message"] and ("free on" in failed["message"] or "ulimit -f" in failed["message"])
    assert "Free some space" in failed["hint"]
    assert index.read_bytes() == before, "the site that was there is still whole"
    assert [p.name for p in (ws.root / "build").iterdir()] == ["site"], "nothing half-built beside it"
    build()  # space again: no manual cleanup needed
    assert index.is_file() and leftovers([ws.root], depth=4) == []
