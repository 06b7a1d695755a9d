"""What the process-level tests share: a free loopback port, and waiting for a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

from models.llama_server import free_port

__all__ = ["free_port", "until"]


def until(condition: Callable[[], bool], seconds: float, what: str, *, every: float = 0.05) -> None:
    """Poll ``condition`` every ``every`` seconds; fail with ``what`` when it is still false after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(every)
