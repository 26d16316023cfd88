"""A real ``kb serve`` subprocess on 127.0.0.1 and a raw-socket HTTP/1.1 client for hostile requests.

The raw client sends exactly the bytes a case holds (no library normalises the framing, header
case or encoding) and reads the reply until the server closes or the declared length is in.
Shared by tests/hostile/test_hostile_http.py and bench/http_fuzz.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KEY = "hostile-test-key"
ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    closed: bool = True  # the server closed the connection after it

    def json(self) -> dict:
        return json.loads(self.body)


def parse_reply(data: bytes, seconds: float) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body, seconds)


def send_raw(port: int, data: bytes, *, timeout: float = 30.0, head_only: bool = False) -> Reply:
    """Send ``data`` on a fresh connection; read the one reply (``Connection: close`` or a length)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413, 431) and close before it has read everything
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                reply = parse_reply(buf, 0)
                length = reply.headers.get("content-length")
                if head_only or (length is not None and len(reply.body) >= int(length)):
                    if reply.headers.get("connection", "").lower() != "close":
                        break
    return parse_reply(buf, time.monotonic() - start)


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    auth: bool = True,
    content_type: str | None = "application/json",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    given = {k.lower() for k in headers or {}}
    if auth and "authorization" not in given:
        lines.append(f"Authorization: Bearer {KEY}")
    if body and content_type and "content-type" not in given:
        lines.append(f"Content-Type: {content_type}")
    if "content-length" not in given and "transfer-encoding" not in given and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class KbServe:
    """``kb serve --bundle B`` with a bearer key and short read timeouts (seconds)."""

    bundle: Path
    header_timeout_s: float = 1.0
    body_timeout_s: float = 1.5
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def __enter__(self) -> KbServe:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "KB_SERVE_API_KEY": KEY,
                "KB_SERVE_HEADER_TIMEOUT_S": str(self.header_timeout_s),
                "KB_SERVE_BODY_TIMEOUT_S": str(self.body_timeout_s),
                "HF_HUB_OFFLINE": "1",
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                **self.extra_env,
            }
        )
        cmd = [sys.executable, "-m", "pipeline", "serve", "--bundle", str(self.bundle)]
        cmd += ["--port", str(self.port), "--log-level", "warning"]
        self.log = self.bundle.parent / f"serve-{self.port}.log"  # a file: a full pipe would block the server
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.bundle.parent)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("kb serve exited: " + self.log.read_text(errors="replace")[-2000:])
            try:
                if send_raw(self.port, request_bytes("GET", "/healthz"), timeout=5).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("kb serve did not start within 120 s")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self) -> int:
        """Resident memory of the server process (VmRSS, kB)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
