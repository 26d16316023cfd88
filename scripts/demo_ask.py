#!/usr/bin/env python3
"""Ask a running ``kb serve`` one question over HTTP and print the cited answer (the demo's last step).

    python scripts/demo_ask.py "How do I reset the admin password?" [--url http://127.0.0.1:8000] [--wait 60]

Waits (bounded) for /healthz, POSTs /v1/ask, prints the answer, the uncertain flag and each
citation: atom -> who said it, the quote, interview and time (or document and heading).
Standard library only. Uses $KB_SERVE_API_KEY as the bearer key when set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


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


def source_line(src: dict) -> str:
    if "interview" in src:
        return (
            f"{src.get('speaker', '?')}: \"{src.get('quote', '').strip()}\" "
            f"(interview {src['interview']}, {hms(src.get('start', 0))}-{hms(src.get('end', 0))})"
        )
    if "document" in src:
        line = f" (line {src['line']})" if src.get("line") else ""
        return f"{src['document']} § {src.get('heading', '')}{line}"
    return json.dumps(src)


def main() -> int:
    ap = argparse.ArgumentParser(description="Ask a running kb serve and print the cited answer.")
    ap.add_argument("question")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    args = ap.parse_args()
    base = args.url.rstrip("/")

    deadline = time.monotonic() + args.wait
    while True:
        try:
            health = call(base + "/healthz", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                print(f"Error: no kb server answering at {base} after {args.wait:.0f} s.", file=sys.stderr)
                print("Hint: start one with 'kb serve --bundle dist/kb-*.duckdb'.", file=sys.stderr)
                return 1
            time.sleep(0.5)
    try:
        result = call(base + "/v1/ask", {"question": args.question})
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        print(f"Error: the server answered {exc.code}: {detail}", file=sys.stderr)
        return 1

    bundle = health.get("bundle", {})
    print(f"Q: {args.question}")
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
