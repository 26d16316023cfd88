"""``kb serve`` (the HTTP chat endpoint) and ``kb ask`` (one cited answer in the terminal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from pipeline.cli import app
from pipeline.cli._common import console, err_console, limit_native_threads, state
from pipeline.config import Settings
from pipeline.errors import BundleError, KbError


def _settings_and_bundle(ctx: typer.Context, bundle: Path | None, **flags: Any) -> tuple[Settings, Path, Path]:
    """Settings of the workspace (when there is one), the bundle file (the given one or dist/'s
    newest) and its source (what a reload looks at again: the given file or folder, or dist/)."""
    from pipeline.service.reload import resolve_bundle

    st = state(ctx)
    try:
        ws = st.workspace
    except KbError:
        if bundle is None:
            raise BundleError(
                "No --bundle given and no workspace here to find dist/kb-*.duckdb in.",
                "Pass --bundle PATH, or run from a workspace after 'kb export'.",
            ) from None
        settings = Settings.load(None, **flags)
        limit_native_threads(settings.threads)
        return settings, resolve_bundle(bundle), bundle
    settings = Settings.load(ws.root, **flags)
    limit_native_threads(settings.threads)
    source = bundle if bundle is not None else ws.dist_dir
    return settings, resolve_bundle(source), source


@app.command()
def serve(
    ctx: typer.Context,
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
    host: str | None = typer.Option(None, help="Interface to listen on (serve.host, default 127.0.0.1)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (serve.port, default 8000)."),
    watch: bool = typer.Option(False, "--watch", help="Reload when the bundle file (or the folder's newest) changes."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the bundle over HTTP: search, cited answers, OpenAI-compatible chat, metrics.

    Reload a new bundle without dropping requests: POST /admin/reload, send SIGHUP, or --watch.
    """
    import signal

    from pipeline.service.app import create_app, reload_in_background
    from pipeline.service.server import require_uvicorn, run_server

    settings, _, source = _settings_and_bundle(ctx, bundle, **{"serve.host": host, "serve.port": port})
    if not 1 <= settings.serve.port <= 65535:
        from pipeline.errors import ConfigError

        raise ConfigError(
            f"serve.port {settings.serve.port} is not a TCP port", "Set serve.port (or --port) to 1-65535."
        )
    require_uvicorn()
    web = create_app(source, settings, watch=watch)
    live = web.state.service.holder.current
    m = live.manifest
    url = f"http://{settings.serve.host}:{settings.serve.port}"
    err_console.print(
        f"Serving {live.path} ({m.counts.get('atoms', '?')} atoms, {m.embedding.model}) on {url}\n"
        f'  POST {url}/v1/ask {{"question": ...}} · POST /v1/search · POST /v1/chat/completions · GET /metrics\n'
        f"  uncertain below {live.extra['calibration'].threshold:.3f} ({live.extra['calibration'].source})\n"
        f"  answers: {'LLM-grounded (' + settings.llm.model + ')' if web.state.service.llm else 'extractive (no LLM configured)'}"
        f" · auth: {'bearer key from $' + settings.serve.api_key_env if _has_key(settings) else 'open'}",
        markup=False,
    )
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: reload_in_background(web))
    run_server(web, settings.serve.host, settings.serve.port, log_level)


def _has_key(settings: Settings) -> bool:
    from pipeline.config import secret

    return secret(settings.serve.api_key_env) is not None


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question, in quotes."),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle file or folder (default: newest dist/kb-*.duckdb)."
    ),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Atoms to retrieve."),
    fmt: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Answer one question from the bundle, with the atoms and the expert's words it rests on."""
    if fmt not in ("text", "json"):
        raise typer.BadParameter("--format must be 'text' or 'json'")
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    from pipeline.answer import answer
    from pipeline.answer.bundle import open_bundle
    from pipeline.answer.uncertain import calibrate

    settings, path, _ = _settings_and_bundle(ctx, bundle)
    loaded = open_bundle(path, settings)
    try:
        calibration = calibrate(loaded, settings)
        result = answer(loaded, question, settings, k=k, threshold=calibration.threshold)
    finally:
        loaded.close()
    if fmt == "json":
        data = result.to_dict() | {
            "evidence": round(result.evidence, 4),
            "threshold": result.threshold,
            "threshold_source": calibration.source,
            "mode": result.mode,
            "reason": result.reason,
        }
        console.print_json(json.dumps(data, default=str))
        return
    console.print(render_answer(result), markup=False)


def render_answer(result: Any) -> str:
    """The human view: the answer, the uncertain flag, then atom -> who said it, where and when."""
    from pipeline.answer import describe_source

    lines = [result.answer.strip(), ""]
    flag = "YES" if result.uncertain else "no"
    lines.append(
        f"Uncertain: {flag}  (evidence {result.evidence:.2f}, threshold {result.threshold:.2f}; {result.mode})"
    )
    if result.reason and result.uncertain:
        lines.append(f"  why: {result.reason}")
    if result.citations:
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
    return "\n".join(lines)
