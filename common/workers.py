"""A child Python process spoken to in JSON lines, that can be killed at any moment, and its resource caps.

The calculator's worker (tools/worker.py) and the document reader (retrieval/reader.py) both run untrusted input in
such a child: the parent waits for a reply line up to a deadline and kills the whole process group when it passes.
The protocol: the child caps itself and prints ``ready`` (:func:`announce_ready`), then answers each request line
with one JSON line (:func:`write_reply`).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
READY = b"ready"
STARTUP_TIMEOUT_S = 60.0
"""How long a parent waits for a child's ``ready`` line (its imports)."""


class WorkerProcess:
    """``python -m MODULE ARGS...`` in its own session, with pipes, and the bytes read from it so far."""

    def __init__(self, module: str, *args: str) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_PROJECT_ROOT, environment.get("PYTHONPATH")]))
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, env=environment, start_new_session=True,
        )
        self.ready = False
        self.buffer = b""

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def send(self, line: bytes) -> None:
        """Write one request line (OSError when the process is gone)."""
        stdin = self.popen.stdin
        assert stdin is not None
        stdin.write(line.rstrip(b"\n") + b"\n")

    def read_line(self, deadline: float) -> bytes | None:
        """The next line, b"" at end of file (the process died or was killed), or None when the deadline passes
        first (``deadline`` on the time.monotonic clock)."""
        stdout = self.popen.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(stdout.fileno(), 1 << 20)
                if not chunk:
                    return b""
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def kill(self) -> None:
        """SIGKILL the process group (safe from any thread, and more than once)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def close(self) -> None:
        """Kill the process, reap it and close its pipes."""
        self.kill()
        self.popen.wait()
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                stream.close()


def limit_resources(memory_mb: int) -> None:
    """In a child: cap its address space at ``memory_mb`` and write no core files."""
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def announce_ready(memory_mb: int) -> None:
    """In a child, once its imports are done: cap it (:func:`limit_resources`) and tell the parent it is ready."""
    limit_resources(memory_mb)
    sys.stdout.write(READY.decode() + "\n")
    sys.stdout.flush()


def write_reply(reply: dict[str, Any]) -> None:
    """In a child: one reply, as one JSON line, flushed at once."""
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
