"""People's own documents: safe upload names and checks (type by name and content, size), listing, and one
document's view (its text and passages); indexing them is :mod:`assistant.indexing`."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retrieval.converters import ZIP_SUFFIXES
from retrieval.documents import SUPPORTED_SUFFIXES
from retrieval.retriever import Retriever

UPLOAD_PREFIX = "uploads/"


MAX_NAME_CHARS = 120


class UploadRejectedError(Exception):
    """An upload refused before anything was stored; ``status`` is the HTTP status that says why (413, 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def safe_file_name(name: str) -> str:
    """A file name that names nothing but itself: no folders, no dot files, no control or odd characters.

    ``../../etc/passwd`` becomes ``passwd``, ``C:\\x\\a b.md`` becomes ``a b.md``, an empty result ``document``;
    letters of every script stay (NFKC-normalised), so ``報告.md`` and ``議事.md`` stay two files.
    """
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    name = re.sub(r"[^\w .()+-]", "_", name)  # \w keeps letters and digits of every script
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
    documents = retriever.follow().documents() if retriever is not None else {}
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
    records = retriever.follow().documents().get(doc_id) if retriever is not None else None
    if not records:
        return None
    passages = [DocumentPassage(record.chunk_id, record.position, record.section, record.start, record.end,
                                record.text) for record in records]
    return DocumentView(doc_id, records[0].title, records[0].source, passages)
