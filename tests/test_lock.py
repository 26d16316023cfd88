"""The lock file (requirements/lock.txt) against pyproject.toml and against the installed venv.

``make setup`` installs exactly the lock and records its hash in ``<venv>/.kb-lock``; in such a
venv every locked package must be installed at its locked version. ``make lock`` regenerates it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

packaging = pytest.importorskip("packaging.requirements", reason="packaging comes with pytest")
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402
from packaging.version import Version  # noqa: E402

LOCK = REPO_ROOT / "requirements" / "lock.txt"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _locked() -> dict[str, Version]:
    out = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line.strip())
        if m:
            out[canonicalize_name(m.group(1))] = Version(m.group(2))
    return out


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if canonicalize_name(r.name) != canonicalize_name(project["name"])]


def test_lock_pins_every_requirement_of_pyproject_within_its_range():
    locked = _locked()
    missing = [str(r) for r in _requirements() if canonicalize_name(r.name) not in locked]
    outside = [
        f"{r} (locked {locked[canonicalize_name(r.name)]})"
        for r in _requirements()
        if canonicalize_name(r.name) in locked
        and not r.specifier.contains(locked[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not missing and not outside, f"run 'make lock': not locked {missing}; outside their range {outside}"


def test_lock_pins_torch_to_the_local_cpu_build():
    assert str(_locked()["torch"]).startswith("2.13.0"), "torch must stay at the local 2.13.0 CPU build"
    assert not any(name.startswith("nvidia-") for name in _locked()), "no CUDA packages in the lock"


def test_installed_packages_are_the_locked_versions():
    stamp = Path(sys.prefix) / ".kb-lock"
    if not stamp.is_file():
        pytest.skip("this venv was not made by 'make setup' from the lock")
    if stamp.read_text().strip() != hashlib.sha256(LOCK.read_bytes()).hexdigest():
        pytest.fail("the lock changed since this venv was set up: run 'make setup'")
    wrong = {}
    for name, version in _locked().items():
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            wrong[name] = f"missing (locked {version})"
            continue
        if installed != version:
            wrong[name] = f"{installed} (locked {version})"
    assert not wrong, f"installed versions differ from requirements/lock.txt: {wrong}"
