"""Reading untrusted files under a time and memory budget, in a child process that can be killed.

A PDF whose pages share one huge compressed stream can take minutes a page to parse, and a crafted file can ask a
parser for gigabytes. :class:`BoundedReader` hands each file to a warm child process (``python -m
retrieval.reader MEMORY_MB``) that caps its own address space, waits for its reply up to ``timeout_s``, and kills
it when the time passes or when :meth:`BoundedReader.cancel` is called from another thread; the next file gets a
fresh child. The reply is the same :class:`~retrieval.documents.Document` list :func:`read_file` returns.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from common.workers import READY, STARTUP_TIMEOUT_S, WorkerProcess, announce_ready, write_reply
from retrieval.documents import Document, read_file
from retrieval.errors import RetrievalError


class ReadCancelledError(RetrievalError):
    """Reading stopped because :meth:`BoundedReader.cancel` was called."""


class BoundedReader:
    """``read(path, doc_id)`` like :func:`read_file`, in a killable child under ``timeout_s`` and ``memory_mb``.

    One file at a time (calls are serialised); ``cancel`` may be called from any thread.
    """

    def __init__(self, timeout_s: float = 60.0, memory_mb: int = 2048) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._process: WorkerProcess | None = None
        self._cancelled = threading.Event()

    def read(self, path: Path, doc_id: str) -> list[Document]:
        """The documents in ``path``; RetrievalError when it cannot be read, takes too long or needs too much."""
        with self._lock:
            self._cancelled.clear()
            process = self._start()
            try:
                process.send(json.dumps({"path": str(path), "doc_id": doc_id, "cpu_s": self.timeout_s}).encode())
            except OSError:
                self._stop()
                raise RetrievalError(f"{path}: the reader process stopped unexpectedly; please retry") from None
            line = process.read_line(time.monotonic() + self.timeout_s)
            if self._cancelled.is_set():
                self._stop()
                raise ReadCancelledError(f"reading {path.name} was cancelled")
            if line is None:
                self._stop()
                raise RetrievalError(f"{path} took longer than {self.timeout_s:g} s to read and was refused",
                                     "raise retrieval.parse_timeout_s if the file is sound")
            if not line:
                self._stop()
                raise RetrievalError(f"{path} stopped its reader (most likely at the {self.memory_mb} MB memory "
                                     "limit) and was refused", "raise retrieval.parse_memory_mb if the file is sound")
        reply = json.loads(line)
        if "error" in reply:
            raise RetrievalError(reply["error"])
        return [Document(**fields) for fields in reply["documents"]]

    def cancel(self) -> None:
        """Stop the file being read now (its ``read`` raises ReadCancelledError); the next read starts afresh."""
        self._cancelled.set()
        process = self._process
        if process is not None:
            process.kill()

    def close(self) -> None:
        """Kill the child process (a new one starts on the next read)."""
        self.cancel()
        with self._lock:
            self._stop()

    def _start(self) -> WorkerProcess:
        if self._process is not None and not self._process.alive():
            self._stop()
        if self._process is None:
            self._process = WorkerProcess("retrieval.reader", str(self.memory_mb))
        process = self._process
        if not process.ready:
            if process.read_line(time.monotonic() + STARTUP_TIMEOUT_S) != READY:
                self._stop()
                raise RetrievalError("the document reader process did not start", "check the installation")
            process.ready = True
        return process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None


def _limit_cpu(seconds: float) -> None:
    """Let this file use at most ``seconds`` more CPU time (twice, for slack): if the parent is killed, an orphaned
    child still stops parsing a hostile file (SIGXCPU) instead of keeping a core busy."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(spent + 2 * seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _serve(memory_mb: int) -> None:
    import markitdown  # noqa: F401 - the parsers are imported before the cap and the first request
    import pdfminer.high_level  # noqa: F401

    announce_ready(memory_mb)
    for line in sys.stdin:
        try:
            request = json.loads(line)
            _limit_cpu(float(request.get("cpu_s", 60.0)))
            documents = read_file(Path(request["path"]), str(request["doc_id"]))
            reply: dict[str, object] = {"documents": [asdict(document) for document in documents]}
        except MemoryError:
            return  # the parent sees the end of the stream and reports the memory limit
        except (OSError, UnicodeError, RetrievalError) as error:
            reply = {"error": str(error)}
        except Exception as error:  # a broken file can make a parser raise anything: report it, never die
            reply = {"error": f"{type(error).__name__}: {error}"}
        write_reply(reply)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
