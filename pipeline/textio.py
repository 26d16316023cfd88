"""Reading user files as UTF-8 text, with the file, line and column of the first bad byte.

One place for a rule every reader of user files follows (atoms, kb.yaml, interview.yaml,
transcripts, question files): a non-UTF-8 byte is an InputError naming where it is and how to
fix it, never a UnicodeDecodeError traceback. Stdlib only, so any layer may use it.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import InputError


def decode_utf8(data: bytes, path: str | Path, hint: str, *, bom: bool = False) -> str:
    """``data`` as text (a leading BOM dropped when ``bom``); InputError at the first bad byte."""
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise InputError(
            f"byte 0x{data[exc.start]:02x} is not UTF-8 (offset {exc.start})",
            hint,
            path=str(path),
            line=line,
            column=column,
        ) from None


def read_utf8(path: str | Path, hint: str = "Re-save the file as UTF-8.", *, bom: bool = False) -> str:
    """Read ``path`` as UTF-8 text; see ``decode_utf8``."""
    return decode_utf8(Path(path).read_bytes(), path, hint, bom=bom)


def clock(seconds: float | int | None) -> str:
    """A moment of a recording as people read it: ``hh:mm:ss``, floored to the second.

    The one formatter for displayed timestamps (transcript.md, the review site, ``kb ask``, the
    API's text and the chat page), so a quote at 754.9 s reads 00:12:34 everywhere. Links and
    JSON carry the exact seconds instead (``exact_seconds``).
    """
    s = max(0, int(float(seconds or 0)))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def exact_seconds(seconds: float | int | None) -> str:
    """Seconds for a link's ``#t=``: exact, without trailing zeros (``754.2``, ``12``)."""
    return f"{float(seconds or 0):.3f}".rstrip("0").rstrip(".")
