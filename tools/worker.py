"""A warm calculator worker process with a wall-clock limit and an address-space cap.

The parent sends one JSON line per request (the normalised expression text, which the worker parses again with
the same whitelist parser) and reads one JSON line back. If no answer arrives in time the worker is killed with
SIGKILL and a fresh one is started in the background, so the next request finds a warm worker. The child caps its
own address space (RLIMIT_AS) and CPU time (RLIMIT_CPU) before it reads any request.

Run as ``python -m tools.worker MEMORY_MB`` (the parent does this); it prints ``ready`` once SymPy is imported.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tools import errors
from tools.errors import CalcTimeLimitError, CalculatorError, ResultTooLargeError

DEFAULT_TIME_LIMIT_S = 1.5
DEFAULT_MEMORY_MB = 1024
STARTUP_TIMEOUT_S = 60.0
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
_ERROR_TYPES: dict[str, type[CalculatorError]] = {
    name: value for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, CalculatorError)
}


class CalculatorWorker:
    """One warm worker process; ``evaluate`` is thread-safe (requests are served one at a time)."""

    def __init__(self, time_limit_s: float = DEFAULT_TIME_LIMIT_S, memory_mb: int = DEFAULT_MEMORY_MB) -> None:
        self.time_limit_s = time_limit_s
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._buffer = b""
        self.restarts = 0

    def start(self) -> None:
        """Start the process if none is running (returns at once; readiness is awaited on first use)."""
        if self._process is not None and self._process.poll() is None:
            return
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_PROJECT_ROOT, environment.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tools.worker", str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, env=environment, start_new_session=True,
        )
        self._ready = False
        self._buffer = b""

    @property
    def pid(self) -> int | None:
        """The worker's process id, if it is running."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def evaluate(self, expression: str) -> dict[str, Any]:
        """Evaluate normalised calculator text in the worker; raises CalculatorError subclasses."""
        with self._lock:
            self.start()
            if not self._ready:
                self._read_line(time.monotonic() + STARTUP_TIMEOUT_S, "starting the calculator worker")
                self._ready = True
            process = self._process
            assert process is not None and process.stdin is not None
            try:
                process.stdin.write(json.dumps({"expression": expression}).encode() + b"\n")
            except (BrokenPipeError, OSError):
                self._restart()
                raise CalculatorError("the calculator worker stopped unexpectedly; please retry") from None
            line = self._read_line(time.monotonic() + self.time_limit_s, "the calculation")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("restart"):
            with self._lock:
                self._restart()
        if "error" in reply:
            error_type = _ERROR_TYPES.get(reply["error"], CalculatorError)
            raise error_type(reply["message"])
        return reply

    def _read_line(self, deadline: float, what: str) -> bytes:
        process = self._process
        assert process is not None and process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._restart()
                    raise CalcTimeLimitError(f"{what} took longer than the limit and was stopped")
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    self._restart()
                    raise ResultTooLargeError(f"{what} stopped the worker (most likely at its {self.memory_mb} MB memory limit)")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _restart(self) -> None:
        self.close()
        self.restarts += 1
        self.start()

    def close(self) -> None:
        """Kill the worker process (a new one starts on the next request)."""
        process, self._process = self._process, None
        self._ready = False
        self._buffer = b""
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


_default_worker: CalculatorWorker | None = None
_default_lock = threading.Lock()


_default_limits = {"time_limit_s": DEFAULT_TIME_LIMIT_S, "memory_mb": DEFAULT_MEMORY_MB}


def configure_default_worker(time_limit_s: float, memory_mb: int) -> None:
    """Set the limits of the process-wide worker; a running worker whose memory cap changes is restarted."""
    with _default_lock:
        _default_limits.update(time_limit_s=time_limit_s, memory_mb=memory_mb)
        worker = _default_worker
    if worker is not None:
        with worker._lock:
            worker.time_limit_s = time_limit_s
            if worker.memory_mb != memory_mb:
                worker.memory_mb = memory_mb
                worker._restart()


def default_worker() -> CalculatorWorker:
    """The process-wide worker, created (and started) on first use and killed at exit."""
    global _default_worker
    with _default_lock:
        if _default_worker is None:
            _default_worker = CalculatorWorker(float(_default_limits["time_limit_s"]), int(_default_limits["memory_mb"]))
            _default_worker.start()
            atexit.register(_default_worker.close)
        return _default_worker


# ---- the child side ------------------------------------------------------------------------------

def _limit_resources(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _serve(memory_mb: int) -> None:
    from tools.evaluation import MAX_RESULT_BITS, evaluate
    from tools.parsing import parse

    # Every value the size checks allow must be printable (Python's default stops at 4300 digits).
    sys.set_int_max_str_digits(MAX_RESULT_BITS // 3 + 100)
    _limit_resources(memory_mb)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            reply = evaluate(parse(str(request["expression"])))
        except CalculatorError as error:
            reply = {"error": type(error).__name__, "message": error.message}
        except MemoryError:
            out_of_memory = {"error": "ResultTooLargeError", "message": "the calculation ran out of memory", "restart": 1}
            sys.stdout.write(json.dumps(out_of_memory) + "\n")
            sys.stdout.flush()
            return  # the heap may be in a bad state; the parent starts a fresh worker
        except Exception as error:  # noqa: BLE001 - any other failure is reported, never fatal
            reply = {"error": "CalculatorError", "message": f"the calculation failed: {type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MEMORY_MB)
