"""``kb embed onnx --out DIR``: the embedding model as ONNX, for a serve image without torch."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import console, state
from pipeline.cli.root import app

embed_app = typer.Typer(help="Embedding model files for serving (onnx, no torch at serve time).", no_args_is_help=True)
app.add_typer(embed_app, name="embed")


@embed_app.command("onnx")
def onnx(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the model to (model.onnx, tokenizer, pooling)."),
    int8: bool = typer.Option(False, "--int8", help="Also write model.int8.onnx (dynamic int8; checked at serve)."),
) -> None:
    """Export embed.model to ONNX (needs torch once, here); serve with embed.model: OUT, embed.backend: onnx."""
    from pipeline.backends.embed import resolve_model
    from pipeline.backends.embed.fast import write_onnx_model

    settings = state(ctx).settings()
    ref = resolve_model(settings.embed.model)
    if not ref.local:
        from pipeline.backends.embed.base import missing_model

        raise missing_model(ref.location, "kb embed onnx needs a local model directory")
    written = write_onnx_model(Path(ref.location), ref.model_id, out, int8=int8)
    console.print(f"wrote {len(written)} file(s) for {ref.model_id} to {out}", markup=False)
    console.print(f"serve without torch: embed.model: {out}  embed.backend: onnx", markup=False)
