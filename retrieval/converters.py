"""Office documents, web pages, spreadsheets and e-books to markdown, with markitdown.

markitdown was chosen over docling by measurement (docs/BENCHMARKS.md, document converters): on the documents
suite's HTML it kept the same headings, code blocks and tables, converted 5x faster (0.11 s against 0.60 s for a 50 KB
manual, after docling's 4.4 s start), and installs in about 60 MB where docling brought 6.2 GB, including a second
torch build that conflicts with the pinned one. PDFs are read by pdfminer.six directly (retrieval/pdf.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.markdown import headed_tables

CONVERTED_SUFFIXES = (".html", ".htm", ".docx", ".pptx", ".xlsx", ".csv", ".epub")
ZIP_SUFFIXES = {".docx": "Word", ".pptx": "PowerPoint", ".xlsx": "Excel", ".epub": "EPUB"}
"""Formats stored as zip archives (markitdown would read a broken one as plain text: it is refused instead)."""
_HTML_TITLE = re.compile(r"^\s*#\s+(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Converted:
    """A file as markdown, with the title the file itself gives (empty when it gives none)."""

    markdown: str
    title: str


def convert(path: Path) -> Converted:
    """``path`` (one of CONVERTED_SUFFIXES) as markdown; RetrievalError when the file cannot be read."""
    import zipfile

    from markitdown import MarkItDown
    from markitdown._exceptions import MarkItDownException

    suffix = path.suffix.lower()
    if suffix in ZIP_SUFFIXES and not zipfile.is_zipfile(path):
        raise RetrievalError(f"{path.name} could not be converted (not a {ZIP_SUFFIXES[suffix]} file: no zip archive)")
    try:
        result = MarkItDown(enable_plugins=False).convert_local(str(path))
    except MarkItDownException as error:
        reasons = re.findall(r"threw (\w+) with message: ([^\n]+)", str(error))
        reason = "; ".join(f"{kind}: {message}" for kind, message in reasons) or type(error).__name__
        raise RetrievalError(f"{path.name} could not be converted ({reason})") from None
    markdown = headed_tables(result.markdown.replace("\r\n", "\n").strip())
    if suffix == ".csv":  # markitdown gives the bare table; the file name says what it holds
        markdown = f"# {path.stem}\n\n{markdown}"
    title = (result.title or "").strip()
    if not title:
        match = _HTML_TITLE.search(markdown[:4000])
        title = match.group(1).strip() if match else ""
    return Converted(markdown, title)
