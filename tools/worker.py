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
import sys
import threading
import time
from typing import Any

from common.workers import STARTUP_TIMEOUT_S, WorkerProcess, announce_ready, write_reply
from tools import errors
from tools.errors import CalcTimeLimitError, CalculatorError, ResultTooLargeError

DEFAULT_TIME_LIMIT_S = 1.5
DEFAULT_MEMORY_MB = 1024
_ERROR_TYPES: dict[str, type[CalculatorError]] = {
    name: value for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, CalculatorError)
}


class CalculatorWorker:
    """A warm worker process plus a warm spare; ``evaluate`` is thread-safe (one request at a time).

    When a calculation is killed at the time limit, the spare (already past its SymPy import) takes over at once
    and a new spare starts in the background, so a run of hostile inputs is answered within the limit each time.
    """

    def __init__(self, time_limit_s: float = DEFAULT_TIME_LIMIT_S, memory_mb: int = DEFAULT_MEMORY_MB) -> None:
        self.time_limit_s = time_limit_s
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._current: WorkerProcess | None = None
        self._spare: WorkerProcess | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start the worker and its spare if they are not running (returns at once)."""
        for name in ("_current", "_spare"):
            process = getattr(self, name)
            if process is not None and not process.alive():
                process.close()
                setattr(self, name, None)
        if self._current is None:
            self._current, self._spare = self._spare or WorkerProcess("tools.worker", str(self.memory_mb)), None
        if self._spare is None:
            self._spare = WorkerProcess("tools.worker", str(self.memory_mb))

    @property
    def pid(self) -> int | None:
        """The serving process's id, if it is running."""
        current = self._current
        return current.popen.pid if current is not None and current.alive() else None

    def evaluate(self, expression: str) -> dict[str, Any]:
        """Evaluate normalised calculator text in the worker; raises CalculatorError subclasses."""
        with self._lock:
            self.start()
            process = self._current
            assert process is not None
            if not process.ready:
                self._expect_line(process, STARTUP_TIMEOUT_S, "starting the calculator worker")
                process.ready = True
            try:
                process.send(json.dumps({"expression": expression}).encode())
            except OSError:
                self._replace_current()
                raise CalculatorError("the calculator worker stopped unexpectedly; please retry") from None
            reply: dict[str, Any] = json.loads(self._expect_line(process, self.time_limit_s, "the calculation"))
            if reply.get("restart"):
                self._replace_current()
        if "error" in reply:
            error_type = _ERROR_TYPES.get(reply["error"], CalculatorError)
            raise error_type(reply["message"])
        return reply

    def _expect_line(self, process: WorkerProcess, timeout_s: float, what: str) -> bytes:
        line = process.read_line(time.monotonic() + timeout_s)
        if line is None:
            self._replace_current()
            raise CalcTimeLimitError(f"{what} took longer than the {timeout_s:g} s limit and was stopped")
        if not line:
            self._replace_current()
            raise ResultTooLargeError(
                f"{what} stopped the worker (most likely at its {self.memory_mb} MB memory limit)"
            )
        return line

    def _replace_current(self) -> None:
        if self._current is not None:
            self._current.close()
        self._current = None
        self.restarts += 1
        self.start()

    def close(self) -> None:
        """Kill the worker and its spare (new ones start on the next request)."""
        for process in (self._current, self._spare):
            if process is not None:
                process.close()
        self._current = self._spare = None


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
                worker.close()


def default_worker() -> CalculatorWorker:
    """The process-wide worker, created (and started) on first use and killed at exit."""
    global _default_worker
    with _default_lock:
        if _default_worker is None:
            limits = _default_limits
            _default_worker = CalculatorWorker(float(limits["time_limit_s"]), int(limits["memory_mb"]))
            _default_worker.start()
            atexit.register(_default_worker.close)
        return _default_worker


# ---- the child side ------------------------------------------------------------------------------

def _serve(memory_mb: int) -> None:
    from tools.evaluation import MAX_RESULT_BITS, evaluate
    from tools.parsing import parse

    # Every value the size checks allow must be printable (Python's default stops at 4300 digits).
    sys.set_int_max_str_digits(MAX_RESULT_BITS // 3 + 100)
    announce_ready(memory_mb)
    for line in sys.stdin:
        try:
            request = json.loads(line)
            reply = evaluate(parse(str(request["expression"])))
        except CalculatorError as error:
            reply = {"error": type(error).__name__, "message": error.message}
        except MemoryError:
            message = "the calculation ran out of memory"
            out_of_memory = {"error": "ResultTooLargeError", "message": message, "restart": 1}
            write_reply(out_of_memory)
            return  # the heap may be in a bad state; the parent starts a fresh worker
        except Exception as error:  # any other failure is reported, never fatal
            reply = {"error": "CalculatorError", "message": f"the calculation failed: {type(error).__name__}: {error}"}
        write_reply(reply)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MEMORY_MB)
