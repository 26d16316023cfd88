"""Workspace paths, atomic writes, content hashes and freshness sidecars.

Every stage reads files and writes files. Writes go to a temp file in the same folder and are
renamed into place, so a crash never leaves half a file. Each stage output records the hashes
of its inputs and settings in a sidecar under ``.kb/state/``; an unchanged input is skipped.

One module per job: ``paths`` (the Workspace and confinement), ``files`` (atomic writes, temp
files), ``disk`` (a full disk), ``leftovers`` (crash leftovers), ``hashes`` (sha256, Freshness),
``git`` (the audit log). Callers import from ``pipeline.workspace``.
"""

from __future__ import annotations

import os  # noqa: F401  # atomic writes go through os.replace; tests patch it as pipeline.workspace.os

from pipeline.errors import KbError
from pipeline.workspace.disk import disk_full_error, disk_guard
from pipeline.workspace.files import (
    TEMP_PREFIX,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    temp_dir,
    temp_prefix,
    write_new_text,
)
from pipeline.workspace.git import git_commit, git_identity, git_init, in_git_repo
from pipeline.workspace.hashes import Freshness, sha256_bytes, sha256_file, sha256_json, sha256_text
from pipeline.workspace.leftovers import clean_leftovers, leftovers
from pipeline.workspace.paths import (
    INTERVIEW_YAML,
    MARKERS,
    RUN_LOG,
    TRANSCRIPT_JSON,
    TRANSCRIPT_MD,
    Workspace,
    confine,
    find_workspace,
)

__all__ = [
    "INTERVIEW_YAML",
    "MARKERS",
    "RUN_LOG",
    "TEMP_PREFIX",
    "TRANSCRIPT_JSON",
    "TRANSCRIPT_MD",
    "Freshness",
    "KbError",
    "Workspace",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clean_leftovers",
    "confine",
    "disk_full_error",
    "disk_guard",
    "find_workspace",
    "git_commit",
    "git_identity",
    "git_init",
    "in_git_repo",
    "leftovers",
    "sha256_bytes",
    "sha256_file",
    "sha256_json",
    "sha256_text",
    "temp_dir",
    "temp_prefix",
    "write_new_text",
]
