"""Benchmark: prompt tokens sent per transcript token, and LLM cost per interview hour.

Runs the real distillation (windows, prompt, instructor + openai over HTTP) on a full sample
transcript against the loopback fake OpenAI server (a well-behaved model that answers with
grounded items), and measures what was SENT. Targets: <= 1.5 prompt tokens per transcript
token, <= $0.01 per interview hour at the default price. Prints ratios; asserts nothing.

    .venv/bin/python bench/distill_tokens.py [interviews/<id>/transcript.json]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.backends.llm.tokens import count_tokens, counter_name  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.models import Transcript  # noqa: E402
from pipeline.reporting import Reporter  # noqa: E402
from pipeline.stages import distill  # noqa: E402
from pipeline.stages.distill.windows import render_turn, turns  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from tests.fakes.distill_model import grounded_model, make_workspace  # noqa: E402
from tests.fakes.openai_server import OpenAIServer  # noqa: E402


def default_transcript() -> Path:
    found = sorted((ROOT / "interviews").glob("*/transcript.json"))
    if not found:
        sys.exit("no interviews/*/transcript.json in the repository; pass a transcript.json path")
    return max(found, key=lambda p: p.stat().st_size)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default_transcript()
    transcript = Transcript.model_validate_json(path.read_text(encoding="utf-8"))
    hours = max(s.end for s in transcript.segments) / 3600
    plain_tokens = count_tokens("\n".join(s.text for s in transcript.segments))
    turn_tokens = count_tokens("\n".join(render_turn(t) for t in turns(transcript)))
    tmp = Path(tempfile.mkdtemp(prefix="kb-bench-distill-"))
    try:
        root = make_workspace(tmp / "ws", {transcript.interview: transcript})
        ws = Workspace.at(root)
        with OpenAIServer(responder=grounded_model) as server:
            settings = Settings.load(root, **{"llm.base_url": server.base_url})
            report = distill.run(settings, ws, Reporter(), backend="llm")
            sent = sum(
                count_tokens(json.dumps(r["messages"]) + json.dumps(r.get("tools", []))) for r in server.requests
            )
            n_requests = len(server.requests)
            # a reviewer corrects one word in the middle: how many windows are sent again?
            corrected = transcript.model_copy(deep=True)
            seg = corrected.segments[len(corrected.segments) // 2]
            seg.text = seg.text.replace(" the ", " the the ", 1) if " the " in seg.text else seg.text + " indeed"
            (ws.interview_dir(transcript.interview) / "transcript.json").write_text(
                corrected.model_dump_json(exclude_none=True), encoding="utf-8"
            )
            again = distill.run(settings, ws, Reporter(), backend="llm")
        cfg = settings.llm
        measured_cost = report.usage.cost_usd
        print(f"transcript: {path} ({transcript.interview}), {hours:.2f} h, {len(transcript.segments)} segments")
        print(
            f"token counter: {counter_name()}; window budget {settings.distill.window_tokens} tokens, "
            f"overlap {settings.distill.window_overlap_turns} turns"
        )
        print(f"transcript tokens: {plain_tokens} (text only), {turn_tokens} (as turns with names and times)")
        print(
            f"requests: {n_requests} ({report.windows} windows, {report.usage.reasks} re-asks); atoms: {report.created}"
        )
        print(f"prompt tokens sent: {sent}")
        ratio = sent / plain_tokens
        print(
            f"prompt tokens sent per transcript token: {ratio:.2f}  (target <= 1.5: {'ok' if ratio <= 1.5 else 'MISSED'})"
        )
        print(
            f"after a one-word correction: {again.windows - again.cached_windows} of {again.windows} window(s) sent again"
        )
        per_hour = measured_cost / hours
        print(
            f"tokens billed: {report.usage.tokens_in} in, {report.usage.tokens_out} out "
            f"(the fake bills about 4 characters per token; its answers hold one item per long expert turn)"
        )
        print(
            f"cost per interview hour at ${cfg.price_in_per_1m}/1M in, ${cfg.price_out_per_1m}/1M out: "
            f"${per_hour:.4f}  (target <= $0.01: {'ok' if per_hour <= 0.01 else 'MISSED'})"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
