#!/usr/bin/env python3
"""Ask ``kb serve`` one question over HTTP and print the cited answer (the demo's last step).

    python scripts/demo_ask.py ["question"] --bundle dist/kb-X.duckdb [--workspace WS]   # starts and stops kb serve
    python scripts/demo_ask.py ["question"] --url http://127.0.0.1:8000                 # asks a running server

Waits (bounded) for /healthz, POSTs /v1/ask, prints the answer, the uncertain flag and each
citation: atom -> who said it, the quote, interview and time (or document and heading).
Standard library only. Uses $KB_SERVE_API_KEY as the bearer key when set.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def call(url: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    key = os.environ.get("KB_SERVE_API_KEY")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


DEFAULT_QUESTION = "How do you ship new features before they are finished?"


def short(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + " …"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def source_line(src: dict) -> str:
    if "interview" in src:
        return (
            f"{src.get('speaker', '?')}: \"{short(src.get('quote', ''))}\" "
            f"(interview {src['interview']}, {hms(src.get('start', 0))}-{hms(src.get('end', 0))})"
        )
    if "document" in src:
        line = f" (line {src['line']})" if src.get("line") else ""
        return f"{src['document']} § {src.get('heading', '')}{line}"
    return json.dumps(src)


def main() -> int:
    ap = argparse.ArgumentParser(description="Ask a running kb serve and print the cited answer.")
    ap.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    ap.add_argument("--url", help="a running server (default: start kb serve for --bundle)")
    ap.add_argument("--bundle", type=Path, help="serve this bundle on a free loopback port for the question")
    ap.add_argument("--workspace", type=Path, help="workspace whose kb.yaml the server uses")
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    args = ap.parse_args()
    server = None
    if args.url:
        base = args.url.rstrip("/")
    elif args.bundle:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        kb = [sys.executable, "-m", "pipeline"] + (["--workspace", str(args.workspace)] if args.workspace else [])
        cmd = kb + ["serve", "--bundle", str(args.bundle), "--port", str(port), "--log-level", "warning"]
        print("$ kb serve --bundle", args.bundle, "--port", port, "   (in the background)")
        server = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent)
    else:
        base = "http://127.0.0.1:8000"
    try:
        return ask(base, args.question, args.wait, server)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def ask(base: str, question: str, wait: float, server: subprocess.Popen | None) -> int:

    deadline = time.monotonic() + wait
    while True:
        if server is not None and server.poll() is not None:
            print(f"Error: kb serve exited with code {server.returncode} (see its message above).", file=sys.stderr)
            return 1
        try:
            health = call(base + "/healthz", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                print(f"Error: no kb server answering at {base} after {wait:.0f} s.", file=sys.stderr)
                print("Hint: start one with 'kb serve --bundle dist/kb-*.duckdb'.", file=sys.stderr)
                return 1
            time.sleep(0.5)
    try:
        print(f"$ curl -s -X POST {base}/v1/ask -H 'content-type: application/json' -d '{json.dumps({'question': question})}'\n")
        result = call(base + "/v1/ask", {"question": question})
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        print(f"Error: the server answered {exc.code}: {detail}", file=sys.stderr)
        return 1

    bundle = health.get("bundle", {})
    print(f"Q: {question}")
    print(f"   (bundle {os.path.basename(bundle.get('path', '?'))}, {bundle.get('counts', {}).get('atoms', '?')} atoms)\n")
    print(result["answer"].strip())
    print(f"\nUncertain: {'YES' if result['uncertain'] else 'no'}")
    if result["citations"]:
        print("\nCitations:")
        for i, c in enumerate(result["citations"], 1):
            print(f"  {i}. {c['title']}  [{c['atom_id']}]")
            sources = c.get("sources", [])
            for src in sources[:3]:  # the server lists the sources the answer rests on first
                print(f"     - {source_line(src)}")
            if len(sources) > 3:
                print(f"     - (+{len(sources) - 3} more)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
