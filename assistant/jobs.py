"""Where upload jobs are recorded: beside the staged files (one process), or in a SQL table that every replica on the
same database takes jobs from (``SELECT ... FOR UPDATE SKIP LOCKED``: each job is taken exactly once)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from assistant.core.sql import PostgresDatabase
from common.files import atomic_write_bytes

KEPT_JOBS = 200
"""Finished jobs remembered (the newest); queued and running ones are always kept."""

STALE_AFTER_S = 30.0
"""A shared job whose process has not said it is alive for this long is taken to be orphaned (its process killed)."""

JobState = Literal["queued", "indexing", "done", "failed", "cancelled"]
LIVE: tuple[JobState, ...] = ("queued", "indexing")


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


_FIELDS = tuple(item.name for item in fields(IndexingJob))


class JobBook(Protocol):
    """The record of upload jobs an indexing worker takes its work from."""

    shared: bool
    """True when other processes record and take jobs here too."""

    def put(self, job: IndexingJob, *, durable: bool = True) -> None:
        """Record ``job`` as it now stands (``durable=False``: progress, which a crash may lose)."""
        ...

    def get(self, job_id: str) -> IndexingJob | None:
        """A job by id (None when unknown or long forgotten)."""
        ...

    def recent(self) -> list[IndexingJob]:
        """The remembered jobs, newest first."""
        ...

    def waiting(self) -> int:
        """Jobs queued and not yet taken."""
        ...

    def take(self) -> IndexingJob | None:
        """Take the oldest queued job for this process (state ``indexing``), None when there is none."""
        ...

    def cancel(self, job_id: str) -> IndexingJob | None:
        """Cancel a queued job at once, or ask whoever runs an indexing one to stop it; the job as it now stands."""
        ...

    def cancel_asked(self, job_id: str) -> bool:
        """True when someone asked to cancel the running job ``job_id``."""
        ...

    def alive(self, job_id: str) -> None:
        """Say that this process is still running ``job_id``."""
        ...

    def orphans(self) -> list[IndexingJob]:
        """Running jobs whose process is gone (shared books; a single process's book has none while it runs)."""
        ...


class FileJobBook:
    """Jobs in memory, each kept durable as ``<id>.json`` beside its staged file: one process."""

    shared = False

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self._jobs: OrderedDict[str, IndexingJob] = OrderedDict()
        self._cancel_asked: set[str] = set()
        self._lock = threading.Lock()
        staging.mkdir(parents=True, exist_ok=True)

    def stored(self) -> list[IndexingJob]:
        """The records a previous run left on disk, oldest first (unreadable ones are removed)."""
        jobs = []
        for path in self.staging.glob("*.json"):
            try:
                values = json.loads(path.read_text(encoding="utf-8"))
                jobs.append(IndexingJob(**{key: value for key, value in values.items() if key in _FIELDS}))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)
        return sorted(jobs, key=lambda job: job.created)

    def put(self, job: IndexingJob, *, durable: bool = True) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
            forgotten = []
            while len(self._jobs) > KEPT_JOBS:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in LIVE:
                    break
                forgotten.append(self._jobs.popitem(last=False)[0])
            if job.state not in LIVE:
                self._cancel_asked.discard(job.id)
        if durable:
            atomic_write_bytes(self.staging / f"{job.id}.json", json.dumps(asdict(job)).encode())
        for job_id in forgotten:
            (self.staging / f"{job_id}.json").unlink(missing_ok=True)

    def get(self, job_id: str) -> IndexingJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self) -> list[IndexingJob]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def waiting(self) -> int:
        with self._lock:
            return sum(job.state == "queued" for job in self._jobs.values())

    def take(self) -> IndexingJob | None:
        with self._lock:
            job = next((job for job in self._jobs.values() if job.state == "queued"), None)
            if job is None:
                return None
            job = replace(job, state="indexing", started=time.time())
            self._jobs[job.id] = job
        self.put(job)
        return job

    def cancel(self, job_id: str) -> IndexingJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in LIVE:
                return job
            if job.state == "indexing":
                self._cancel_asked.add(job_id)
                return job
            job = replace(job, state="cancelled", message="cancelled before indexing", finished=time.time())
            self._jobs[job_id] = job  # changed under the lock, so no worker takes it meanwhile
        self.put(job)
        return job

    def cancel_asked(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancel_asked

    def alive(self, job_id: str) -> None:
        return None

    def orphans(self) -> list[IndexingJob]:
        return []


_TABLE = (
    "CREATE TABLE IF NOT EXISTS assistant_index_jobs (id TEXT PRIMARY KEY, file_name TEXT NOT NULL, "
    "doc_id TEXT NOT NULL, state TEXT NOT NULL, chunks_done INTEGER NOT NULL, chunks_total INTEGER NOT NULL, "
    "documents TEXT NOT NULL, message TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, started DOUBLE PRECISION, "
    "finished DOUBLE PRECISION, scope TEXT NOT NULL, owner TEXT, alive DOUBLE PRECISION, "
    "cancel_asked INTEGER NOT NULL DEFAULT 0)")
_ADDED_COLUMNS = (("scope", "TEXT NOT NULL DEFAULT ''"),)
_COLUMNS = ("id, file_name, doc_id, state, chunks_done, chunks_total, documents, message, created, started, "
            "finished")


def _job(row: tuple[Any, ...]) -> IndexingJob:
    values = dict(zip(_FIELDS, row, strict=True))
    values["documents"] = json.loads(values["documents"])
    return IndexingJob(**values)


class PostgresJobBook:
    """Jobs in the table ``assistant_index_jobs`` of a database every replica shares (PostgreSQL): any replica
    takes a queued job, exactly one takes each, and a job whose replica died (no sign of life for
    :data:`STALE_AFTER_S`) is handed back as an orphan. Jobs belong to a ``scope``, the staging folder's path: a
    replica sees and takes only the jobs of its own index (replicas sharing an index mount it at the same path)."""

    shared = True

    def __init__(self, database: PostgresDatabase, scope: str) -> None:
        self._database = database
        self.scope = scope
        self.owner = uuid.uuid4().hex
        with database.schema_lock(), database.transaction() as cursor:
            cursor.execute(_TABLE)
            for column, definition in _ADDED_COLUMNS:  # a table an earlier build made gains what it lacks
                database.add_column(cursor, "assistant_index_jobs", column, definition)
            cursor.execute("CREATE INDEX IF NOT EXISTS assistant_index_jobs_scope ON assistant_index_jobs "
                           "(scope, state, created)")

    def put(self, job: IndexingJob, *, durable: bool = True) -> None:
        values = (job.id, job.file_name, job.doc_id, job.state, job.chunks_done, job.chunks_total,
                  json.dumps(job.documents, ensure_ascii=False), job.message, job.created, job.started,
                  job.finished, self.scope)
        with self._database.transaction() as cursor:
            cursor.execute(f"INSERT INTO assistant_index_jobs ({_COLUMNS}, scope) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT(id) DO UPDATE SET state = excluded.state, chunks_done = excluded.chunks_done, "
                           "chunks_total = excluded.chunks_total, documents = excluded.documents, "
                           "message = excluded.message, started = excluded.started, finished = excluded.finished",
                           values)
            if job.state not in LIVE:
                cursor.execute("DELETE FROM assistant_index_jobs WHERE scope = ? AND state NOT IN ('queued', "
                               "'indexing') AND id NOT IN (SELECT id FROM assistant_index_jobs WHERE scope = ? AND "
                               "state NOT IN ('queued', 'indexing') ORDER BY created DESC LIMIT ?)",
                               (self.scope, self.scope, KEPT_JOBS))

    def get(self, job_id: str) -> IndexingJob | None:
        with self._database.transaction() as cursor:
            row = cursor.execute(f"SELECT {_COLUMNS} FROM assistant_index_jobs WHERE id = ? AND scope = ?",
                                 (job_id, self.scope)).fetchone()
        return _job(row) if row is not None else None

    def recent(self) -> list[IndexingJob]:
        with self._database.transaction() as cursor:
            rows = cursor.execute(f"SELECT {_COLUMNS} FROM assistant_index_jobs WHERE scope = ? "
                                  "ORDER BY created DESC, id DESC LIMIT ?", (self.scope, KEPT_JOBS)).fetchall()
        return [_job(row) for row in rows]

    def waiting(self) -> int:
        with self._database.transaction() as cursor:
            return int(cursor.execute("SELECT COUNT(*) FROM assistant_index_jobs WHERE scope = ? AND "
                                      "state = 'queued'", (self.scope,)).fetchone()[0])

    def take(self) -> IndexingJob | None:
        now = time.time()
        with self._database.transaction() as cursor:
            row = cursor.execute(
                f"UPDATE assistant_index_jobs SET state = 'indexing', started = ?, owner = ?, alive = ? WHERE id = "
                "(SELECT id FROM assistant_index_jobs WHERE scope = ? AND state = 'queued' ORDER BY created, id "
                f"FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING {_COLUMNS}", (now, self.owner, now, self.scope)).fetchone()
        return _job(row) if row is not None else None

    def cancel(self, job_id: str) -> IndexingJob | None:
        with self._database.transaction() as cursor:
            cursor.execute("UPDATE assistant_index_jobs SET state = 'cancelled', message = 'cancelled before "
                           "indexing', finished = ? WHERE id = ? AND scope = ? AND state = 'queued'",
                           (time.time(), job_id, self.scope))
            cursor.execute("UPDATE assistant_index_jobs SET cancel_asked = 1 WHERE id = ? AND scope = ? AND "
                           "state = 'indexing'", (job_id, self.scope))
        return self.get(job_id)

    def cancel_asked(self, job_id: str) -> bool:
        with self._database.transaction() as cursor:
            row = cursor.execute("SELECT cancel_asked FROM assistant_index_jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def alive(self, job_id: str) -> None:
        with self._database.transaction() as cursor:
            cursor.execute("UPDATE assistant_index_jobs SET alive = ? WHERE id = ? AND owner = ?",
                           (time.time(), job_id, self.owner))

    def orphans(self) -> list[IndexingJob]:
        """Running jobs of a process silent for STALE_AFTER_S, each handed to this process (so no other replica
        takes the same orphan)."""
        now = time.time()
        with self._database.transaction() as cursor:
            rows = cursor.execute(
                f"UPDATE assistant_index_jobs SET owner = ?, alive = ? WHERE id IN (SELECT id FROM "
                "assistant_index_jobs WHERE scope = ? AND state = 'indexing' AND alive < ? FOR UPDATE SKIP LOCKED) "
                f"RETURNING {_COLUMNS}", (self.owner, now, self.scope, now - STALE_AFTER_S)).fetchall()
        return [_job(row) for row in rows]
