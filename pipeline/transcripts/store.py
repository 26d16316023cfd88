"""``interviews/<id>/transcript.json`` read back, with one clear error for a damaged file."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from pipeline.errors import InputError
from pipeline.models import Transcript


def read(path: Path, shown: Path | str | None = None) -> Transcript:
    """The transcript at ``path``; a file that does not validate is an InputError naming the field
    (``shown``: the path as the message gives it, e.g. relative to the workspace)."""
    try:
        return Transcript.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(
            "not a valid transcript: " + (f"field '{loc}': " if loc else "") + err["msg"],
            "Restore it from git, or delete it (keep transcript.md: its corrections are merged back) and "
            "re-create it with 'kb transcribe' (schemas/transcript.json describes every field).",
            path=shown if shown is not None else path,
        ) from None
