"""A real redis-server on a unix socket in a temp folder, and real ``kb worker`` processes.

Each test module is marked ``needs_extra("workers")`` (skipped, naming the extra, without celery);
a missing redis-server binary skips too (scripts/setup.sh installs the Debian package).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT


def _redis_ping(sock: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(sock)).ping())
    except Exception:  # noqa: BLE001  not up yet
        return False


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[str]:
    """``redis+socket://`` URL of a fresh redis-server per test module (no port, no persistence).

    A module's tests share it: each test's runs have their own ids and workspaces, and each test
    stops the workers it started, so nothing of one test is left for the next to consume."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; scripts/setup.sh does it)")
    folder = tmp_path_factory.mktemp("redis")
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [exe, "--port", "0", "--unixsocket", str(sock), "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (sock.exists() and _redis_ping(sock)):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis+socket://{sock}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Workers:
    """Start ``kb worker`` processes (each in its own process group) and stop them."""

    def __init__(self, broker: str, log_dir: Path):
        self.broker = broker
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
        env.update(PYTHONPATH=str(REPO_ROOT), KB_WORKERS_BROKER_URL=self.broker, **extra)
        return env

    def start(self, workspace: Path, *args: str, **env: str) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115  closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "-w", str(workspace), "worker", "--loglevel", "WARNING", *args],
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (its pool processes too)."""
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)

    def wait_ready(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` workers answer a control ping (consuming: a task sent now may go to any of them)."""
        from celery import Celery

        app = Celery("kb-test", broker=self.broker, set_as_current=False)
        try:
            deadline = time.monotonic() + timeout
            while len(app.control.ping(timeout=0.5)) < n:
                if time.monotonic() > deadline:
                    pytest.fail(f"{n} worker(s) did not come up\n" + self.logs())
        finally:
            app.close()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("worker-*.log")))

    def stop(self) -> None:
        """After the test: SIGKILL to each worker's process group (the test is over, nothing needs
        finishing; a warm shutdown costs seconds per worker)."""
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)


@pytest.fixture
def workers(broker, tmp_path) -> Iterator[Workers]:
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    w = Workers(broker, logs)
    try:
        yield w
    finally:
        w.stop()
