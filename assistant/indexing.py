"""Uploaded documents indexed in the background, one job at a time.

An upload checked by :func:`assistant.documents.check_upload` is staged under a sanitised name beside the index, read
with the same readers as ``assistant index add`` (in a killable child process under a time and memory budget), and
indexed by a single worker thread, so uploads never race each other. The index changes only when a job completes (the
retriever swaps in a finished copy): a failed, cancelled or interrupted job leaves it as it was.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from assistant.documents import UPLOAD_PREFIX
from common.files import atomic_write_bytes
from retrieval.errors import RetrievalError
from retrieval.reader import BoundedReader, ReadCancelledError
from retrieval.retriever import Retriever

STAGING_FOLDER = "staging"
"""Where uploads wait to be indexed: a folder inside the index's directory (under the cache directory)."""


KEPT_JOBS = 200


JobState = Literal["queued", "indexing", "done", "failed", "cancelled"]


T = TypeVar("T")


@dataclass(frozen=True)
class IndexingJob:
    """One uploaded file being indexed: where it stands, and what it added."""

    id: str
    file_name: str
    doc_id: str
    state: JobState = "queued"
    chunks_done: int = 0
    chunks_total: int = 0
    documents: list[str] = field(default_factory=list)
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {"object": "indexing_job", **asdict(self)}


class UploadQueueFullError(Exception):
    """The indexing line is full; ``retry_after`` is the estimated wait, in seconds, until it has room."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


class JobCancelledError(Exception):
    """Raised inside an indexing job that was cancelled (or interrupted by a shutdown)."""


class IndexWrites:
    """Changes to the index other than uploads (removals, MCP's add_document) in their own single thread.

    A change waits for the index's writer lock, which an indexing job holds while it embeds: here it waits without
    holding one of the threads that answer questions. At most ``max_pending`` changes wait; more are refused.
    """

    def __init__(self, max_pending: int = 16) -> None:
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writes")

    def submit(self, change: Callable[[], T]) -> Future[T]:
        """Run ``change`` after the changes before it; UploadQueueFullError when too many wait."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise UploadQueueFullError(5, f"{self._pending} index changes are waiting; retry shortly")
            self._pending += 1
        future = self._executor.submit(change)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def pending(self) -> int:
        """Changes submitted and not yet done (the running one included)."""
        with self._lock:
            return self._pending

    def close(self) -> None:
        """Finish the running change; drop those waiting."""
        self._executor.shutdown(wait=True, cancel_futures=True)


class IndexingJobs:
    """Indexes uploads in one background thread, one at a time, from files staged on disk.

    Every job is a record (``<id>.json``) and a staged file (``<id>/<name>``) under ``staging``: queued jobs survive
    a restart (they are queued again at start), a job that can no longer run says why, and staged files of finished
    jobs are removed. At most ``max_queued`` jobs wait; a fuller line refuses uploads with a wait estimate. Each
    file is read by ``reader`` (a killable child process under a time and memory budget) and any job can be
    cancelled while it waits, reads or embeds.
    """

    def __init__(self, retriever: Retriever, staging: Path, reader: BoundedReader | None = None, *,
                 max_queued: int = 8) -> None:
        self.retriever = retriever
        self.staging = staging
        self.reader = reader or BoundedReader()
        self.max_queued = max_queued
        self.writes = IndexWrites()
        self._jobs: OrderedDict[str, IndexingJob] = OrderedDict()
        self._lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._closing = False
        self._durations: deque[float] = deque(maxlen=20)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexing")
        self._recover()

    # ---- the API's side ---------------------------------------------------------------------------

    def submit_all(self, uploads: list[tuple[str, bytes]]) -> list[IndexingJob]:
        """Stage and queue checked uploads (see :func:`check_upload`), all or none; returns their jobs at once.

        UploadQueueFullError when the line has no room for all of them.
        """
        with self._lock:
            waiting = sum(job.state == "queued" for job in self._jobs.values())
            if waiting + len(uploads) > self.max_queued:
                raise UploadQueueFullError(self._retry_after(len(uploads) - (self.max_queued - waiting)),
                                           f"{waiting} uploads are waiting to be indexed (at most "
                                           f"{self.max_queued}); retry later")
            jobs = [IndexingJob(uuid.uuid4().hex, name, UPLOAD_PREFIX + name) for name, _ in uploads]
            for job in jobs:
                self._jobs[job.id] = job  # counted at once, so two requests cannot both take the last places
        for position, (job, (_, data)) in enumerate(zip(jobs, uploads, strict=True)):
            folder = self.staging / job.id
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / job.file_name).write_bytes(data)
                self._set(job, persist=True)
            except OSError as error:  # a full disk: the job says so instead of waiting for ever
                shutil.rmtree(folder, ignore_errors=True)
                jobs[position] = replace(job, state="failed", finished=time.time(),
                                         message=f"the upload could not be staged: {error.strerror or error}")
                self._set(jobs[position])
                continue
            self._worker.submit(self._run, job.id)
        return jobs

    def get(self, job_id: str) -> IndexingJob | None:
        """A job by id (None when unknown or long forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self) -> list[IndexingJob]:
        """The remembered jobs, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> IndexingJob | None:
        """Cancel a waiting or running job (a running one stops reading or embedding; the index stays as it
        was); returns the job as it now stands, None when unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in ("queued", "indexing"):
                return job
            self._cancelled.add(job_id)
            if job.state == "queued":  # changed under the lock, so the worker cannot start it meanwhile
                job = replace(job, state="cancelled", message="cancelled before indexing", finished=time.time())
                self._jobs[job_id] = job
        if job.state == "cancelled":
            self._set(job, persist=True)
            shutil.rmtree(self.staging / job.id, ignore_errors=True)
        else:
            self.reader.cancel()
        return job

    def close(self) -> None:
        """Stop: the running job is interrupted (it runs again at the next start, as do the queued ones)."""
        self._closing = True
        running = [job.id for job in self.recent() if job.state == "indexing"]
        with self._lock:
            self._cancelled.update(running)
        if running:
            self.reader.cancel()
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.writes.close()
        self.reader.close()

    # ---- the worker's side ------------------------------------------------------------------------

    def _set(self, job: IndexingJob, *, persist: bool = False) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
            forgotten = []
            while len(self._jobs) > KEPT_JOBS:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in ("queued", "indexing"):
                    break
                forgotten.append(self._jobs.popitem(last=False)[0])
        if persist:
            atomic_write_bytes(self.staging / f"{job.id}.json", json.dumps(asdict(job)).encode())
        for job_id in forgotten:
            (self.staging / f"{job_id}.json").unlink(missing_ok=True)

    def _recover(self) -> None:
        """Load the job records a previous run left: queued and interrupted jobs are queued again when their file
        is still staged; anything else left in the staging folder is removed."""
        self.staging.mkdir(parents=True, exist_ok=True)
        jobs = []
        for path in self.staging.glob("*.json"):
            try:
                fields = json.loads(path.read_text(encoding="utf-8"))
                jobs.append(IndexingJob(**{key: value for key, value in fields.items() if key != "object"}))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)
        for job in sorted(jobs, key=lambda job: job.created):
            if job.state not in ("queued", "indexing"):
                self._set(job)
            elif (self.staging / job.id / job.file_name).is_file():
                self._set(replace(job, state="queued", chunks_done=0, chunks_total=0, started=None,
                                  message="queued again after a restart"), persist=True)
                self._worker.submit(self._run, job.id)
            else:
                self._set(replace(job, state="failed", finished=time.time(),
                                  message="the server restarted before this file was indexed; upload it again"),
                          persist=True)
        live = {job.id for job in self.recent() if job.state in ("queued", "indexing")}
        for path in self.staging.iterdir():
            if path.is_dir() and path.name not in live:
                shutil.rmtree(path, ignore_errors=True)
            elif path.suffix == ".partial":
                path.unlink(missing_ok=True)

    def _retry_after(self, places: int) -> int:
        """Seconds until ``places`` more uploads fit: the running job's remaining time (from its progress, else
        from recent jobs), then a typical job for each further place."""
        typical = sum(self._durations) / len(self._durations) if self._durations else 10.0
        running = next((job for job in self._jobs.values() if job.state == "indexing"), None)
        remaining = typical
        if running is not None and running.started is not None:
            elapsed = time.time() - running.started
            if running.chunks_done and running.chunks_total:
                remaining = elapsed * (running.chunks_total - running.chunks_done) / running.chunks_done
            else:
                remaining = max(1.0, typical - elapsed)
        return max(1, math.ceil(remaining + (max(places, 1) - 1) * typical))

    def _run(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None or job.state != "queued" or self._closing:
            return
        self._set(job := replace(job, state="indexing", started=time.time()), persist=True)
        folder = self.staging / job.id
        try:
            self._index(job, folder / job.file_name)
        except Exception as error:  # a broken file can raise anything: the job fails, the index stays as it was
            current = self.get(job.id) or job
            if self._closing:  # interrupted by a shutdown: it runs again at the next start
                self._set(replace(current, state="queued", chunks_done=0, message="interrupted by a shutdown"),
                          persist=True)
                return
            if isinstance(error, JobCancelledError | ReadCancelledError) or job.id in self._cancelled:
                self._set(replace(current, state="cancelled", message="cancelled; the index is as it was",
                                  finished=time.time()), persist=True)
            else:
                kind = "" if isinstance(error, OSError | UnicodeError | RetrievalError) else \
                    f"{type(error).__name__}: "
                message = kind + (error.message if isinstance(error, RetrievalError) else str(error))
                message = message.replace(str(folder / job.file_name), job.file_name).replace(str(folder), "upload")
                self._set(replace(current, state="failed", message=message, finished=time.time()), persist=True)
        finally:
            with self._lock:
                self._cancelled.discard(job.id)
        if not self._closing:
            shutil.rmtree(folder, ignore_errors=True)

    def _check(self, job: IndexingJob) -> None:
        if self._closing or job.id in self._cancelled:
            raise JobCancelledError(job.id)

    def _index(self, job: IndexingJob, staged: Path) -> None:
        """Read the staged file and add its documents; the job records what happened (errors propagate)."""
        documents = [replace(document, source=document.source.replace(str(staged), job.doc_id, 1),
                             doc_id=document.doc_id if document.doc_id.startswith(job.doc_id)
                             else f"{job.doc_id}:{document.doc_id}")
                     for document in self.reader.read(staged, job.doc_id)]
        self._check(job)

        def progress(done: int, total: int) -> None:
            self._check(job)
            self._set(replace(self.get(job.id) or job, chunks_done=done, chunks_total=total))

        report = self.retriever.add_documents(documents, progress=False, on_progress=progress)
        notes = [f"{doc} has the same text as {earlier}, which is indexed already"
                 for doc, earlier in report.duplicates]
        notes += [f"{doc} is held by another source ({held}); remove it first" for doc, held, _ in report.conflicts]
        notes += [f"{doc} was indexed already, unchanged" for doc in report.unchanged]
        notes += [f"{doc} replaced the earlier upload of the same name" for doc in report.replaced]
        current = self.get(job.id) or job
        indexed = [*report.added, *report.replaced, *report.unchanged]
        chunks = report.chunks_added
        finished = time.time()
        if current.started is not None:
            self._durations.append(finished - current.started)
        self._set(replace(current, state="done" if indexed else "failed", documents=indexed, chunks_done=chunks,
                          chunks_total=chunks, finished=finished,
                          message="; ".join([f"{chunks} chunk{'s' * (chunks != 1)} indexed", *notes])),
                  persist=True)
