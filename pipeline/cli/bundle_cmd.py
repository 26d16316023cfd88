"""Commands of this group register on `app` (placeholder until the group's issue lands)."""

from __future__ import annotations

from pipeline.cli import app  # noqa: F401
