"""What the process-level tests share: a free loopback port, and waiting for a condition with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def until(condition: Callable[[], bool], seconds: float, what: str, *, every: float = 0.05) -> None:
    """Poll ``condition`` every ``every`` seconds; fail with ``what`` when it is still false after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(every)
