"""The project's user-facing error type: every error says what went wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AssistantError(Exception):
    """Base class for errors a user can act on; ``hint`` says how to fix the problem."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  how to fix: {self.hint}" if self.hint else self.message


class ConfigError(AssistantError):
    """Settings that cannot be loaded or do not make sense."""


def choice_hint(name: str, known: Iterable[str], noun: str = "choose one of") -> str:
    """A fix-it hint for an unknown name: the closest known name, else the whole list."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"{noun}: {', '.join(names)}"
