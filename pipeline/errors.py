"""One error hierarchy. Every message says what went wrong; every hint says how to fix it.

The CLI maps any ``KbError`` to exit code 1 and prints ``Error: ...`` then ``Hint: ...``.
Anything else that escapes is a bug and keeps its traceback. Stdlib only.
"""

from __future__ import annotations

from pathlib import Path


class KbError(Exception):
    """Base class: a problem the user can fix, with the fix in ``hint``."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class ConfigError(KbError):
    """kb.yaml, environment variables or flags hold an invalid setting."""


class InputError(KbError):
    """A file the user gave us is malformed. Carries the file and line when known."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
    ):
        self.path = str(path) if path is not None else None
        self.detail = message  # the message without the file:line prefix
        self.line = line
        self.column = column
        where = ""
        if self.path:
            where = self.path
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message, hint)


class NotFoundError(KbError):
    """A named thing (atom, interview, file, bundle) does not exist."""


class ConflictError(KbError):
    """The operation would overwrite something a person owns (an existing file, an edited atom)."""


class MissingDependencyError(KbError):
    """An optional Python package is not installed; the hint names the pip extra."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed.",
            f"Install it with: pip install 'kb[{extra}]'  (or 'make setup' in a checkout).",
        )
        self.package = package
        self.extra = extra


class MissingModelError(KbError):
    """A model (ASR, diarisation, embedding, LLM) is not available locally."""


class BackendError(KbError):
    """A backend (LLM endpoint, ASR engine, ...) failed after retries."""


class BudgetExceededError(KbError):
    """A run would spend more than ``--max-cost`` allows."""


class BundleError(KbError):
    """A bundle file is missing, tampered with, or built for another schema or model."""
