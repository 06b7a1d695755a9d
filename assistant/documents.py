"""People's own documents: listing, safe uploads, and indexing them in the background, one job at a time.

An upload is checked before anything is written (type by name and content, size), stored under a sanitised name
in a private temporary folder, read with the same readers as ``assistant index add``, and indexed by a single
worker thread, so uploads never race each other. The index changes only when a job completes (the retriever
swaps in a finished copy): a failed or interrupted job leaves it as it was.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from retrieval.converters import ZIP_SUFFIXES
from retrieval.documents import SUPPORTED_SUFFIXES, read_file
from retrieval.errors import RetrievalError
from retrieval.retriever import Retriever

UPLOAD_PREFIX = "uploads/"
MAX_NAME_CHARS = 120
KEPT_JOBS = 200
JobState = Literal["queued", "indexing", "done", "failed"]


class UploadRejectedError(Exception):
    """An upload refused before anything was stored; ``status`` is the HTTP status that says why (413, 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def safe_file_name(name: str) -> str:
    """A file name that names nothing but itself: no folders, no dot files, no control or odd characters.

    ``../../etc/passwd`` becomes ``passwd``, ``C:\\x\\a b.md`` becomes ``a b.md``, an empty result ``document``.
    """
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    name = re.sub(r"[^\w .()+-]", "_", name, flags=re.ASCII)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: MAX_NAME_CHARS - len(suffix) - 1] + dot + suffix) if dot and len(suffix) <= 10 else \
            name[:MAX_NAME_CHARS]
    return name or "document"


def check_upload(name: str, data: bytes, max_bytes: int) -> str:
    """The sanitised name of an acceptable upload; UploadRejectedError (413 or 415) otherwise."""
    if len(data) > max_bytes:
        raise UploadRejectedError(413, f"{name!r} is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    safe = safe_file_name(name)
    suffix = Path(safe).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadRejectedError(415, f"{name!r}: only {', '.join(SUPPORTED_SUFFIXES)} files can be added")
    if not data.strip():
        raise UploadRejectedError(415, f"{name!r} is empty")
    if suffix == ".pdf":
        if not data.startswith(b"%PDF-"):
            raise UploadRejectedError(415, f"{name!r} is named .pdf but is not a PDF file")
    elif suffix in ZIP_SUFFIXES:
        if not data.startswith(b"PK\x03\x04"):
            raise UploadRejectedError(415, f"{name!r} is named {suffix} but is not a {ZIP_SUFFIXES[suffix]} file")
    else:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadRejectedError(415, f"{name!r} is not UTF-8 text") from None
    return safe


def list_documents(retriever: Retriever | None, *, prefix: str = "", offset: int = 0,
                   limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
    """The number of indexed documents whose id starts with ``prefix``, and one page of them, by id."""
    documents = retriever.store.documents() if retriever is not None else {}
    chosen = sorted(doc_id for doc_id in documents if doc_id.startswith(prefix))
    page = [{"id": doc_id, "object": "document", "title": documents[doc_id][0].title,
             "source": documents[doc_id][0].source, "chunks": len(documents[doc_id]),
             "characters": sum(len(record.text) for record in documents[doc_id])}
            for doc_id in chosen[offset: offset + limit]]
    return len(chosen), page


@dataclass(frozen=True)
class DocumentPassage:
    """One chunk of an indexed document, where it sits (headings, character offsets) and its text."""

    chunk_id: str
    position: int
    section: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class DocumentView:
    """An indexed document as its passages, in order, and its text put back together from them (what a citation
    opens: the page shows the passages and highlights the cited one)."""

    id: str
    title: str
    source: str
    passages: list[DocumentPassage]

    @property
    def text(self) -> str:
        """The document's text from its passages; an overlap between neighbours is written once."""
        parts: list[str] = []
        reached = 0
        for passage in self.passages:
            if passage.start >= reached or not parts:
                parts.append(passage.text)
            elif passage.end > reached:  # plain text chunks overlap their predecessor by a few sentences
                tail = passage.text[reached - passage.start:]
                parts.append(tail.lstrip())
            reached = max(reached, passage.end)
        return "\n\n".join(part for part in parts if part)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {"id": self.id, "object": "document", "title": self.title, "source": self.source, "text": self.text,
                "passages": [asdict(passage) for passage in self.passages]}


def view_document(retriever: Retriever | None, doc_id: str) -> DocumentView | None:
    """The indexed document ``doc_id`` as passages (None when no such document is indexed)."""
    records = retriever.store.documents().get(doc_id) if retriever is not None else None
    if not records:
        return None
    passages = [DocumentPassage(record.chunk_id, record.position, record.section, record.start, record.end,
                                record.text) for record in records]
    return DocumentView(doc_id, records[0].title, records[0].source, passages)


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
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {"object": "indexing_job", **asdict(self)}


class IndexingJobs:
    """Indexes uploads in one background thread; remembers the last KEPT_JOBS jobs for status queries."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self._jobs: OrderedDict[str, IndexingJob] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexing")

    def submit(self, safe_name: str, data: bytes) -> IndexingJob:
        """Queue a checked upload (see :func:`check_upload`); returns its job at once."""
        job = IndexingJob(uuid.uuid4().hex, safe_name, UPLOAD_PREFIX + safe_name)
        self._set(job)
        self._worker.submit(self._run, job, data)
        return job

    def get(self, job_id: str) -> IndexingJob | None:
        """A job by id (None when unknown or long forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self) -> list[IndexingJob]:
        """The remembered jobs, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def close(self) -> None:
        """Stop taking jobs; the running one finishes."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _set(self, job: IndexingJob) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.popitem(last=False)

    def _run(self, job: IndexingJob, data: bytes) -> None:
        self._set(job := replace(job, state="indexing"))
        folder = tempfile.mkdtemp(prefix="assistant-upload-")
        try:
            self._index(job, data, Path(folder))
        except Exception as error:  # a broken PDF can raise anything: the job fails, the index stays as it was
            kind = "" if isinstance(error, OSError | UnicodeError | RetrievalError) else f"{type(error).__name__}: "
            message = (kind + str(error)).replace(str(Path(folder) / job.file_name), job.file_name)
            self._set(replace(job, state="failed", message=message.replace(folder, "upload"), finished=time.time()))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _index(self, job: IndexingJob, data: bytes, folder: Path) -> None:
        """Read the staged file and add its documents; the job records what happened (errors propagate)."""
        staged = folder / job.file_name
        staged.write_bytes(data)
        documents = [replace(document, source=document.source.replace(str(staged), job.doc_id, 1),
                             doc_id=document.doc_id if document.doc_id.startswith(job.doc_id)
                             else f"{job.doc_id}:{document.doc_id}")
                     for document in read_file(staged, job.doc_id)]

        def progress(done: int, total: int) -> None:
            self._set(replace(self.get(job.id) or job, chunks_done=done, chunks_total=total))

        report = self.retriever.add_documents(documents, progress=False, on_progress=progress)
        notes = [f"{doc} has the same text as {earlier}, which is indexed already"
                 for doc, earlier in report.duplicates]
        notes += [f"{doc} is held by another source ({held}); remove it first" for doc, held, _ in report.conflicts]
        notes += [f"{doc} was indexed already, unchanged" for doc in report.unchanged]
        current = self.get(job.id) or job
        indexed = [*report.added, *report.replaced, *report.unchanged]
        chunks = report.chunks_added
        self._set(replace(current, state="done" if indexed else "failed", documents=indexed, chunks_done=chunks,
                          chunks_total=chunks, finished=time.time(),
                          message="; ".join(notes) or f"{chunks} chunk{'s' * (chunks != 1)} indexed"))

