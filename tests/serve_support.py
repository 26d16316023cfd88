"""``kb serve`` as a real subprocess on a free loopback port (shared by tests/index and tests/service)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def kb_serve(*args: str, port: int, env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[str]:
    """Start ``kb ARGS... --port PORT``, wait for /readyz, yield the base URL, stop it (SIGTERM)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    cmd = [sys.executable, "-m", "pipeline", *map(str, args), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=base | (env or {}), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"kb serve exited {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "kb serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
