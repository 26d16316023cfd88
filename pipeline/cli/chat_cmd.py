"""``kb ask`` (one cited answer, ``--follow-up`` continues the last exchange) and ``kb chat``: a small REPL over the bundle that keeps the conversation in memory.

Each question is answered with the earlier turns as history (``pipeline.answer``), so "and how
do I fix that?" follows the conversation. ``kb ask --follow-up`` does the same across runs with
the last exchange kept in ``.kb/chat/last.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from pipeline.cli._common import console, err_console
from pipeline.cli.root import app
from pipeline.config import Settings
from pipeline.errors import KbError

MAX_TURNS = 20  # kept history: the last ten exchanges


class Asker:
    """A loaded bundle with its calibration and term statistics, answering with history."""

    def __init__(self, settings: Settings, path: Path) -> None:
        from pipeline.answer.bundle import open_bundle

        self.settings = settings
        self.bundle = open_bundle(path, settings)
        self._calibration: Any = None
        self._stats: Any = None

    @property
    def calibration(self) -> Any:
        if self._calibration is None:
            from pipeline.answer.calibrate import calibrate
            from pipeline.answer.index import TermStats

            self._stats = TermStats.of(self.bundle)
            self._calibration = calibrate(self.bundle, self.settings, self._stats)
        return self._calibration

    def ask(self, question: str, history: list[dict[str, Any]], k: int = 5) -> Any:
        from pipeline.answer import answer

        threshold = self.calibration.threshold
        return answer(
            self.bundle, question, self.settings, k=k, history=history, threshold=threshold, stats=self._stats
        )

    def __enter__(self) -> Asker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bundle.close()


def history_file(ctx: typer.Context) -> Path:
    from pipeline.cli._common import state

    try:
        root = state(ctx).workspace.state_dir
    except KbError:
        root = Path.cwd() / ".kb"
    return root / "chat" / "last.json"


def load_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise KbError(
            f"No earlier exchange to follow up on ({path} does not exist).",
            "Ask a first question with 'kb ask \"...\"'.",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise KbError(f"{path} is not a readable conversation ({exc}).", "Delete it and ask a new question.") from None
    turns = data.get("turns") if isinstance(data, dict) else None
    return list(turns) if isinstance(turns, list) else []


def save_history(path: Path, turns: list[dict[str, Any]]) -> None:
    from pipeline.workspace import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"turns": turns[-MAX_TURNS:]})


@app.command()
def chat(
    ctx: typer.Context,
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Atoms to retrieve."),
) -> None:
    """Chat with the bundle in the terminal: follow-ups use the conversation. Empty line or Ctrl-D ends."""
    from pipeline.cli.serve_cmd import _settings_and_bundle

    settings, path, _ = _settings_and_bundle(ctx, bundle)
    history: list[dict[str, Any]] = []
    with Asker(settings, path) as asker:
        err_console.print(f"kb chat over {path.name}: ask a question (empty line to stop).", markup=False)
        while True:
            try:
                question = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if not question or question in ("/quit", "/exit"):
                break
            if question == "/new":
                history = []
                continue
            result = asker.ask(question, history, k=k)
            console.print(render_answer(result) + "\n", markup=False)
            history = (history + turn_pair(question, result))[-MAX_TURNS:]


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question, in quotes."),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Atoms to retrieve."),
    fmt: str = typer.Option("text", "--format", help="text or json."),
    follow_up: bool = typer.Option(
        False, "--follow-up", "-f", help="Continue the last exchange (kept under .kb/chat/): a follow-up question."
    ),
) -> None:
    """Answer one question from the bundle, with the atoms and the expert's words it rests on."""
    if fmt not in ("text", "json"):
        raise typer.BadParameter("--format must be 'text' or 'json'")
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    from pipeline.cli.serve_cmd import _settings_and_bundle

    settings, path, _ = _settings_and_bundle(ctx, bundle)
    store = history_file(ctx)
    history = load_history(store) if follow_up else []
    with Asker(settings, path) as asker:
        result = asker.ask(question, history, k=k)
        calibration = asker.calibration
    save_history(store, history + turn_pair(question, result))
    if fmt == "json":
        data = result.to_dict() | {
            "evidence": round(result.evidence, 4),
            "threshold": result.threshold,
            "threshold_source": calibration.source,
            "mode": result.mode,
            "reason": result.reason,
            "signals": result.signals,
        }
        console.print_json(json.dumps(data, default=str))
        return
    console.print(render_answer(result), markup=False)


def turn_pair(question: str, result: Any) -> list[dict[str, Any]]:
    """The exchange as history turns (the assistant's citations kept, for elliptic follow-ups)."""
    return [
        {"role": "user", "content": question},
        {
            "role": "assistant",
            "content": result.answer,
            "citations": [{"atom_id": c["atom_id"]} for c in result.citations],
        },
    ]


def render_answer(result: Any) -> str:
    """The human view: which question, the answer, the uncertain flag, then atom -> who said it,
    where and when; an uncertain answer lists the closest atoms apart, never as citations."""
    from pipeline.answer.citations import describe_source

    lines = [f"Answering: {result.answered_question}", "", result.answer.strip(), ""]
    flag = "YES" if result.uncertain else "no"
    lines.append(
        f"Uncertain: {flag}  (score {float(result.signals.get('score', 0.0)):.2f}, cosine {result.evidence:.2f}, "
        f"threshold {result.threshold:.2f}; {result.mode})"
    )
    if result.reason and result.uncertain:
        lines.append(f"  why: {result.reason}")
    if result.citations and not result.uncertain:
        lines += ["", "Citations:"]
        for i, c in enumerate(result.citations, 1):
            lines.append(f"  {i}. {c['title']}  [{c['atom_id']}]")
            sources = c.get("sources", [])
            for src in sources[:3]:  # the ones the answer rests on come first
                lines.append(f"     - {describe_source(src)}")
            if len(sources) > 3:
                lines.append(f"     - (+{len(sources) - 3} more sources: --format json lists them all)")
            if not c.get("sources"):
                lines.append("     - (no sources recorded)")
    if result.suggestions:
        lines += ["", "Closest atoms (suggestions, not an answer):"]
        lines += [f"  - {s['title']}  [{s['atom_id']}]" for s in result.suggestions]
    return "\n".join(lines)
