"""Uploaded documents indexed in the background, one job at a time.

An upload checked by :func:`assistant.documents.check_upload` is staged under a sanitised name beside the index, read
with the same readers as ``assistant index add`` (in a killable child process under a time and memory budget), and
indexed by a single worker thread, so uploads never race each other (replicas sharing a PostgreSQL job table and the
index take turns through the index's writer lock). The index changes only when a job completes (the
retriever swaps in a finished copy): a failed, cancelled or interrupted job leaves it as it was.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from assistant.documents import UPLOAD_PREFIX
from assistant.jobs import LIVE, STALE_AFTER_S, FileJobBook, IndexingJob, JobBook
from retrieval.errors import RetrievalError
from retrieval.reader import BoundedReader, ReadCancelledError
from retrieval.retriever import Retriever

STAGING_FOLDER = "staging"
"""Where uploads wait to be indexed: a folder inside the index's directory (under the cache directory)."""

POLL_S = 1.0
"""How often an idle worker looks for jobs other replicas queued (a job queued here wakes it at once)."""

SHARED_STAGING_GRACE_S = 3600.0
"""A staged folder no job names is removed at start only when older than this when replicas share the staging
folder (another replica may be writing one it has not recorded yet)."""


T = TypeVar("T")


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

    Every job is a record in a :class:`~assistant.jobs.JobBook` and a staged file (``<id>/<name>``) under
    ``staging``. With the default book (records beside the staged files) queued jobs survive a restart (they are
    queued again at start) and a job that can no longer run says why; with a shared book (PostgreSQL, replicas on one
    staging folder) any replica takes the next queued job, each exactly once, and a job whose replica died is queued
    again. Staged files of finished jobs are removed. At most ``max_queued`` jobs wait; a fuller line refuses uploads
    with a wait estimate. Each file is read by ``reader`` (a killable child process under a time and memory budget)
    and any job can be cancelled while it waits, reads or embeds.
    """

    def __init__(self, retriever: Retriever, staging: Path, reader: BoundedReader | None = None, *,
                 max_queued: int = 8, book: JobBook | None = None, poll_s: float = POLL_S) -> None:
        self.retriever = retriever
        self.staging = staging
        self.reader = reader or BoundedReader()
        self.max_queued = max_queued
        self.book: JobBook = book if book is not None else FileJobBook(staging)
        self.writes = IndexWrites()
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._running: str | None = None
        self._cancelled: set[str] = set()
        self._closing = False
        self._wake = threading.Event()
        self._durations: deque[float] = deque(maxlen=20)
        self._recover()
        self._worker = threading.Thread(target=self._work, name="indexing", daemon=True)
        self._worker.start()

    # ---- the API's side ---------------------------------------------------------------------------

    def submit_all(self, uploads: list[tuple[str, bytes]]) -> list[IndexingJob]:
        """Stage and queue checked uploads (see :func:`check_upload`), all or none; returns their jobs at once.

        UploadQueueFullError when the line has no room for all of them.
        """
        jobs = []
        with self._lock:  # counted and queued together, so two requests cannot both take the last places
            waiting = self.book.waiting()
            if waiting + len(uploads) > self.max_queued:
                raise UploadQueueFullError(self._retry_after(len(uploads) - (self.max_queued - waiting)),
                                           f"{waiting} uploads are waiting to be indexed (at most "
                                           f"{self.max_queued}); retry later")
            for name, data in uploads:
                job = IndexingJob(uuid.uuid4().hex, name, UPLOAD_PREFIX + name)
                folder = self.staging / job.id
                try:  # staged before it is queued: a worker (of any replica) may take it at once
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / job.file_name).write_bytes(data)
                except OSError as error:  # a full disk: the job says so instead of waiting for ever
                    shutil.rmtree(folder, ignore_errors=True)
                    job = replace(job, state="failed", finished=time.time(),
                                  message=f"the upload could not be staged: {error.strerror or error}")
                self.book.put(job)
                jobs.append(job)
        self._wake.set()
        return jobs

    def get(self, job_id: str) -> IndexingJob | None:
        """A job by id (None when unknown or long forgotten)."""
        return self.book.get(job_id)

    def recent(self) -> list[IndexingJob]:
        """The remembered jobs, newest first."""
        return self.book.recent()

    def cancel(self, job_id: str) -> IndexingJob | None:
        """Cancel a waiting or running job (a running one stops reading or embedding; the index stays as it
        was); returns the job as it now stands, None when unknown."""
        job = self.book.cancel(job_id)
        if job is not None and job.state == "cancelled":
            shutil.rmtree(self.staging / job.id, ignore_errors=True)
        elif job is not None and job.state == "indexing":
            self._stop(job.id)
        return job

    def close(self) -> None:
        """Stop: the running job is interrupted (it runs again at the next start, or on another replica, as do the
        queued ones)."""
        self._closing = True
        self._wake.set()
        with self._lock:
            running = self._running
        if running is not None:
            self._stop(running)
        self._worker.join()
        self.writes.close()
        self.reader.close()

    # ---- the worker's side ------------------------------------------------------------------------

    def _stop(self, job_id: str) -> None:
        """Interrupt ``job_id`` if this process runs it."""
        with self._lock:
            if self._running != job_id:
                return
            self._cancelled.add(job_id)
        self.reader.cancel()

    def _recover(self) -> None:
        """Take up what a previous run left: queued and interrupted jobs are queued again when their file is still
        staged (a shared book does this for jobs whose replica died, as it goes); staged folders no live job names
        and half-written files are removed."""
        self.staging.mkdir(parents=True, exist_ok=True)
        if isinstance(self.book, FileJobBook):
            for job in self.book.stored():
                if job.state in LIVE:
                    self._queue_again(job, "queued again after a restart",
                                      "the server restarted before this file was indexed; upload it again")
                else:
                    self.book.put(job, durable=False)
        live = {job.id for job in self.book.recent() if job.state in LIVE}
        oldest = time.time() - SHARED_STAGING_GRACE_S if self.book.shared else math.inf
        for path in self.staging.iterdir():
            if path.is_dir() and path.name not in live and path.stat().st_mtime < oldest:
                shutil.rmtree(path, ignore_errors=True)
            elif path.suffix == ".partial":
                path.unlink(missing_ok=True)

    def _queue_again(self, job: IndexingJob, queued: str, lost: str) -> None:
        """Queue an interrupted job again, or fail it when its staged file is gone."""
        if (self.staging / job.id / job.file_name).is_file():
            self.book.put(replace(job, state="queued", chunks_done=0, chunks_total=0, started=None, message=queued))
        else:
            self.book.put(replace(job, state="failed", finished=time.time(), message=lost))

    def _retry_after(self, places: int) -> int:
        """Seconds until ``places`` more uploads fit: the running job's remaining time (from its progress, else
        from recent jobs), then a typical job for each further place."""
        typical = sum(self._durations) / len(self._durations) if self._durations else 10.0
        running = next((job for job in self.book.recent() if job.state == "indexing"), None)
        remaining = typical
        if running is not None and running.started is not None:
            elapsed = time.time() - running.started
            if running.chunks_done and running.chunks_total:
                remaining = elapsed * (running.chunks_total - running.chunks_done) / running.chunks_done
            else:
                remaining = max(1.0, typical - elapsed)
        return max(1, math.ceil(remaining + (max(places, 1) - 1) * typical))

    def _work(self) -> None:
        """The worker: take the oldest queued job (of any replica, with a shared book) and run it, until closed."""
        while not self._closing:
            for orphan in self.book.orphans():
                self._queue_again(orphan, "queued again: the server indexing it stopped",
                                  "the server indexing this file stopped and the file is gone; upload it again")
            self._wake.clear()
            job = self.book.take()
            if job is None:
                self._wake.wait(self.poll_s)
            elif self._closing:
                self.book.put(replace(job, state="queued", started=None, message="interrupted by a shutdown"))
            else:
                self._run(job)

    def _watch(self, job: IndexingJob, done: threading.Event) -> None:
        """While a shared job runs: say it is alive, and stop it when another replica asks to cancel it."""
        while not done.wait(min(self.poll_s, STALE_AFTER_S / 4)):
            self.book.alive(job.id)
            if self.book.cancel_asked(job.id):
                self._stop(job.id)

    def _run(self, job: IndexingJob) -> None:
        with self._lock:
            self._running = job.id
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(job, done), name="indexing-watch", daemon=True)
        if self.book.shared:
            watcher.start()
        folder = self.staging / job.id
        try:
            self._index(job, folder / job.file_name)
        except Exception as error:  # a broken file can raise anything: the job fails, the index stays as it was
            current = self.book.get(job.id) or job
            if self._closing:  # interrupted by a shutdown: it runs again at the next start
                self.book.put(replace(current, state="queued", chunks_done=0, message="interrupted by a shutdown"))
                return
            if isinstance(error, JobCancelledError | ReadCancelledError) or job.id in self._cancelled:
                self.book.put(replace(current, state="cancelled", message="cancelled; the index is as it was",
                                      finished=time.time()))
            else:
                kind = "" if isinstance(error, OSError | UnicodeError | RetrievalError) else \
                    f"{type(error).__name__}: "
                message = kind + (error.message if isinstance(error, RetrievalError) else str(error))
                message = message.replace(str(folder / job.file_name), job.file_name).replace(str(folder), "upload")
                self.book.put(replace(current, state="failed", message=message, finished=time.time()))
        finally:
            done.set()
            if watcher.is_alive():
                watcher.join()
            with self._lock:
                self._running = None
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
            self.book.put(replace(self.book.get(job.id) or job, chunks_done=done, chunks_total=total), durable=False)

        report = self.retriever.add_documents(documents, progress=False, on_progress=progress)
        notes = [f"{doc} has the same text as {earlier}, which is indexed already"
                 for doc, earlier in report.duplicates]
        notes += [f"{doc} is held by another source ({held}); remove it first" for doc, held, _ in report.conflicts]
        notes += [f"{doc} was indexed already, unchanged" for doc in report.unchanged]
        notes += [f"{doc} replaced the earlier upload of the same name" for doc in report.replaced]
        current = self.book.get(job.id) or job
        indexed = [*report.added, *report.replaced, *report.unchanged]
        chunks = report.chunks_added
        finished = time.time()
        if current.started is not None:
            self._durations.append(finished - current.started)
        self.book.put(replace(current, state="done" if indexed else "failed", documents=indexed, chunks_done=chunks,
                              chunks_total=chunks, finished=finished,
                              message="; ".join([f"{chunks} chunk{'s' * (chunks != 1)} indexed", *notes])))
