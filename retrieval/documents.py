"""Reading documents from files: .txt, .md, .jsonl, .pdf, and (converted to markdown) .html .docx .pptx .xlsx .csv
.epub; directories are searched recursively."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.converters import CONVERTED_SUFFIXES, convert
from retrieval.errors import RetrievalError
from retrieval.pdf import pdf_text

MARKDOWN_SUFFIXES = (".md", ".markdown")
SUPPORTED_SUFFIXES = (".txt", *MARKDOWN_SUFFIXES, ".jsonl", ".pdf", *CONVERTED_SUFFIXES)


@dataclass(frozen=True)
class Document:
    """A document to index: a stable id, its text, and a title and source for citations.

    ``markdown`` documents are chunked by their structure (retrieval/markdown.py); others by sentences."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    markdown: bool = False

    @property
    def content_hash(self) -> str:
        """sha256 of the text: the same text is never indexed twice."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass
class ReadReport:
    """Documents read from the given paths, and the files that could not be read (with the reason)."""

    documents: list[Document] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def clean_id(doc_id: str) -> str:
    """A document id without control or format characters and outer spaces: a CR/LF or NUL in an id would reach
    the X-Assistant-Sources header of every answer citing it."""
    return "".join(char for char in doc_id if unicodedata.category(char)[0] != "C").strip()


def _title_of(path: Path, text: str) -> str:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("_", " ").replace("-", " ")


def _read_jsonl(path: Path, base_id: str) -> Iterator[Document]:
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise RetrievalError(f"{path}:{number} is not valid JSON: {error.msg}") from None
            if not isinstance(record, dict):
                raise RetrievalError(f"{path}:{number} is not a JSON object")
            text = record.get("text", record.get("content", record.get("context")))
            if not isinstance(text, str) or not text.strip():
                raise RetrievalError(f"{path}:{number} has no 'text' (or 'content'/'context') string")
            given = clean_id(str(record.get("id", record.get("doc_id", ""))))
            doc_id = given or f"{base_id}:{number}"
            yield Document(doc_id, text, str(record.get("title", "")), f"{path}:{number}")


def read_file(path: Path, doc_id: str) -> list[Document]:
    """The documents in one file (a .jsonl file holds one per line)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(_read_jsonl(path, doc_id))
    if suffix in CONVERTED_SUFFIXES:
        converted = convert(path)
        if not converted.markdown.strip():
            raise RetrievalError(f"{path} has no text")
        return [Document(doc_id, converted.markdown, converted.title or _title_of(path, converted.markdown),
                         str(path), markdown=True)]
    if suffix == ".pdf":
        text = pdf_text(path)
    elif suffix in SUPPORTED_SUFFIXES:
        text = path.read_text(encoding="utf-8", errors="replace")
    else:
        raise RetrievalError(f"{path}: unsupported file type {suffix!r}",
                             f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    if not text.strip():
        raise RetrievalError(f"{path} has no text")
    return [Document(doc_id, text, _title_of(path, text), str(path), markdown=suffix in MARKDOWN_SUFFIXES)]


FileReader = Callable[[Path, str], "list[Document]"]
"""Reads one file into documents: :func:`read_file`, or a bounded reader running it in a child process."""


def read_paths(paths: list[Path], *, follow_symlinks: bool = False, reader: FileReader | None = None) -> ReadReport:
    """Every supported document under ``paths``; unreadable files are reported, not fatal.

    A file's id is the folder's name and its path inside the folder (``notes/a/b.md``), or its name for a file
    given directly. Inside a folder, a symlink that leads out of it is skipped (and reported) unless
    ``follow_symlinks``: adding a folder never indexes what lies outside it. ``reader`` reads each file
    (:func:`read_file` by default; the CLI passes a :class:`~retrieval.reader.BoundedReader`).
    """
    read = reader or read_file
    report = ReadReport()
    for given in paths:
        if given.is_dir():
            root = given.resolve()
            files = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            pairs = []
            for file in files:
                if not follow_symlinks and not file.resolve().is_relative_to(root):
                    report.failures.append((str(file), "a symlink out of the folder; not followed "
                                                       "(pass --follow-symlinks to index its target)"))
                    continue
                pairs.append((file, f"{root.name}/{file.relative_to(given).as_posix()}"))
        elif given.is_file():
            pairs = [(given, given.name)]
        else:
            report.failures.append((str(given), "no such file or directory"))
            continue
        for file, doc_id in pairs:
            try:
                report.documents.extend(read(file, doc_id))
            except (OSError, UnicodeError, RetrievalError) as error:
                report.failures.append((str(file), str(error)))
            except Exception as error:  # a broken PDF can raise anything; report it and go on
                report.failures.append((str(file), f"{type(error).__name__}: {error}"))
    return report
