"""The evaluation's user-facing error."""

from __future__ import annotations

from common.errors import AssistantError


class EvalError(AssistantError):
    """An evaluation that cannot run or report as asked (unknown system, no results, bad target)."""
