"""Upload jobs shared by replicas through a real PostgreSQL: every job taken exactly once, a job queued on one replica
indexed by another, a job orphaned by a dead replica queued again, a cancel reaching the replica that runs the job."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.core.sql import PostgresDatabase
from assistant.core.storage import Storage, open_postgres
from assistant.indexing import STAGING_FOLDER, IndexingJobs
from assistant.jobs import IndexingJob, PostgresJobBook
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.reader import ReadCancelledError
from retrieval.retriever import Retriever
from retrieval.settings import RetrievalSettings
from tests.postgres import fresh_database, postgres_server
from tests.waiting import until


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def storages(server: str, request: pytest.FixtureRequest) -> Iterator[list[Storage]]:
    """Two processes' worth of connection pools on one fresh database."""
    url = fresh_database(server, "j_" + request.node.name.lower()[:50])
    opened = [open_postgres(url), open_postgres(url)]
    yield opened
    for storage in opened:
        storage.close()


def _book(storage: Storage, index: Path | None = None) -> PostgresJobBook:
    assert isinstance(storage.database, PostgresDatabase)
    return PostgresJobBook(storage.database, str(((index or Path("/shared")) / STAGING_FOLDER).resolve()))


def _replica(index: Path, storage: Storage, reader: object | None = None) -> IndexingJobs:
    retriever = Retriever.open(index, FakeEmbedder(), RetrievalSettings(embedder="fake", follow_interval_s=0))
    return IndexingJobs(retriever, index / STAGING_FOLDER, reader, book=_book(storage, index), poll_s=0.1)  # type: ignore[arg-type]


def test_concurrent_takers_take_every_job_exactly_once(storages: list[Storage]) -> None:
    books = [_book(storages[0]), _book(storages[1])]
    for number in range(30):
        books[0].put(IndexingJob(f"job{number:02d}", f"f{number}.md", f"uploads/f{number}.md", created=number))
    taken: list[str] = []
    lock = threading.Lock()

    def take(book: PostgresJobBook) -> None:
        while (job := book.take()) is not None:
            with lock:
                taken.append(job.id)

    workers = [threading.Thread(target=take, args=(books[number % 2],)) for number in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(taken) == [f"job{number:02d}" for number in range(30)]
    assert books[1].waiting() == 0 and {job.state for job in books[1].recent()} == {"indexing"}


def test_an_upload_queued_on_one_replica_is_indexed_once_and_seen_by_both(tmp_path: Path,
                                                                         storages: list[Storage]) -> None:
    index = tmp_path / "shared-index"
    first, second = _replica(index, storages[0]), _replica(index, storages[1])
    try:
        jobs = first.submit_all([(f"note{number}.md", f"# Note {number}\n\nKestrel number {number} hovers.".encode())
                                 for number in range(6)])
        until(lambda: all((second.get(job.id) or job).state == "done" for job in jobs), 60, "jobs never finished")
        assert {job.id for job in second.recent()} == {job.id for job in jobs}
        ids = set(second.retriever.follow().documents())
        assert ids == {f"uploads/note{number}.md" for number in range(6)}
        assert all("1 chunk indexed" in (first.get(job.id) or job).message for job in jobs)  # none indexed twice
        assert not [path for path in (index / STAGING_FOLDER).iterdir() if path.is_dir()]
    finally:
        first.close()
        second.close()


def test_a_job_orphaned_by_a_dead_replica_is_queued_again_and_indexed(tmp_path: Path,
                                                                     storages: list[Storage]) -> None:
    index = tmp_path / "shared-index"
    dead = _book(storages[0], index)
    staged = index / STAGING_FOLDER / ("e" * 32)
    staged.mkdir(parents=True)
    (staged / "orphan.md").write_text("# Orphan\n\nIndexed after its replica died.")
    dead.put(IndexingJob("e" * 32, "orphan.md", "uploads/orphan.md"))
    assert dead.take() is not None  # taken, then the replica is "killed": it never says it is alive again
    with storages[0].database.transaction() as cursor:
        cursor.execute("UPDATE assistant_index_jobs SET alive = alive - 3600")
    survivor = _replica(index, storages[1])
    try:
        until(lambda: (survivor.get("e" * 32) or IndexingJob("", "", "")).state == "done", 30, "never re-run")
        assert "uploads/orphan.md" in survivor.retriever.follow().documents()
    finally:
        survivor.close()


class _BlockingReader:
    """Reads until cancelled (as a parser stuck on a huge file would)."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.cancelled = threading.Event()

    def read(self, path: Path, doc_id: str) -> list[Document]:
        self.reading.set()
        if self.cancelled.wait(30):
            raise ReadCancelledError(doc_id)
        return []

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.cancelled.set()


def test_a_cancel_asked_on_one_replica_stops_the_job_another_runs(tmp_path: Path, storages: list[Storage]) -> None:
    index = tmp_path / "shared-index"
    reader = _BlockingReader()
    running = _replica(index, storages[0], reader)
    job = running.submit_all([("stuck.md", b"# Stuck\n\nNever read.")])[0]
    assert reader.reading.wait(10)
    asking = _replica(index, storages[1], _BlockingReader())  # started after the job was taken: it takes nothing
    try:
        assert asking.cancel(job.id) is not None
        until(lambda: (asking.get(job.id) or job).state == "cancelled", 10, "the cancel never reached the runner")
        assert reader.cancelled.is_set()
    finally:
        running.close()
        asking.close()


def test_replicas_on_different_indexes_take_only_their_own_jobs(tmp_path: Path, storages: list[Storage]) -> None:
    """One database, two index directories (replicas that do not share an index): an upload is indexed by the
    replica it was made on, into its own index, and the other neither takes nor lists it."""
    first, second = _replica(tmp_path / "index-one", storages[0]), _replica(tmp_path / "index-two", storages[1])
    try:
        jobs = second.submit_all([(f"own{number}.md", f"# Own {number}\n\nOnly here.".encode())
                                  for number in range(3)])
        until(lambda: all((second.get(job.id) or job).state == "done" for job in jobs), 60, "never indexed")
        assert set(second.retriever.follow().documents()) == {f"uploads/own{number}.md" for number in range(3)}
        assert not first.retriever.follow().documents() and first.recent() == []
        assert first.get(jobs[0].id) is None
    finally:
        first.close()
        second.close()


def test_a_jobs_table_from_an_earlier_build_gains_the_scope_column(storages: list[Storage]) -> None:
    """Found by the reference deployment's test: its database kept the jobs table an earlier build made (no scope
    column), and every replica failed at start with 'column "scope" does not exist'."""
    with storages[0].database.transaction() as cursor:
        cursor.execute("CREATE TABLE assistant_index_jobs (id TEXT PRIMARY KEY, file_name TEXT NOT NULL, "
                       "doc_id TEXT NOT NULL, state TEXT NOT NULL, chunks_done INTEGER NOT NULL, chunks_total "
                       "INTEGER NOT NULL, documents TEXT NOT NULL, message TEXT NOT NULL, created DOUBLE PRECISION "
                       "NOT NULL, started DOUBLE PRECISION, finished DOUBLE PRECISION, owner TEXT, alive DOUBLE "
                       "PRECISION, cancel_asked INTEGER NOT NULL DEFAULT 0)")
    book = _book(storages[1])
    book.put(IndexingJob("f" * 32, "old.md", "uploads/old.md"))
    assert book.waiting() == 1 and book.take() is not None
