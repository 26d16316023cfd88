"""``kb monitoring``: the Grafana dashboard and Prometheus rules that watch kb serve and kb worker."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import app

monitoring = typer.Typer(
    help="Grafana dashboard and Prometheus alert rules for kb serve and kb worker.", no_args_is_help=True
)
app.add_typer(monitoring, name="monitoring")


@monitoring.command("dashboard")
def dashboard_cmd(
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the JSON here (default: print it)."),
) -> None:
    """The Grafana dashboard JSON, generated from the metrics kb defines (import it into Grafana)."""
    from pipeline.cli._common import console
    from pipeline.errors import MissingDependencyError
    from pipeline.workspace import atomic_write_text

    try:
        from pipeline.service.dashboard import render
    except ImportError as exc:  # prometheus-client lives in the serve extra
        raise MissingDependencyError(exc.name or "prometheus_client", "serve", "kb monitoring dashboard") from None
    text = render()
    if out is None:
        console.print(text, end="", markup=False)
    else:
        atomic_write_text(out, text)
        console.print(f"wrote {out}", markup=False)
