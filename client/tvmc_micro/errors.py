"""Errors the CLI reports as one plain message plus a hint (no traceback unless -v)."""

from __future__ import annotations


class TvmcError(Exception):
    """A user-facing failure: `message` names the problem, `hint` says what to try."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"
