"""A PDF's text as people read it, with pdfminer.six.

pypdf (used until #31's seventh measure) ran words together in PDFs that place characters one by one, as troff and
TeX do: the bash manual read "˜/.bash_history.Ifunset, the command history is not savedwhen a shell exits", and a
joined word matches neither the question's terms nor the embedder. pdfminer lays characters out by their gaps and
writes "If unset ... not saved when", with a blank line between text blocks (the chunker's paragraphs);
docs/BENCHMARKS.md has the measure. On top of its text: typographic ligatures as letters, and the running headers and
footers repeated on most pages (a manual's title, its date) dropped, since they cut sentences at every page break.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\u02dc": "~", "\u2212": "-"})
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_FURNITURE_PAGES = 4
"""A document needs this many pages before a line repeated on most of them is taken for a running header."""


def pdf_text(path: Path) -> str:
    """The text of the PDF at ``path``, its pages' text blocks separated by blank lines."""
    from pdfminer.high_level import extract_text

    return clean_pages(extract_text(str(path)).split("\f"))


def clean_pages(pages: list[str]) -> str:
    """The pages' text joined, ligatures spelled out, runs of spaces inside a line made one, and the lines found on
    at least half of the pages (of ``_FURNITURE_PAGES`` or more) dropped."""
    page_lines = [[_SPACES.sub(" ", line.rstrip()) for line in page.translate(_LIGATURES).splitlines()]
                  for page in pages if page.strip()]
    furniture = running_lines(page_lines)
    kept_pages = ["\n".join(line for line in lines if line.strip() not in furniture) for lines in page_lines]
    return "\n\n".join(kept for kept in (re.sub(r"\n{3,}", "\n\n", page).strip() for page in kept_pages) if kept)


def running_lines(pages: list[list[str]]) -> set[str]:
    """The lines (of pages given as their lines) with a letter that appear on at least half of the pages: running
    headers and footers (a lone bullet, brace or number is content)."""
    if len(pages) < _FURNITURE_PAGES:
        return set()
    counts = Counter(line for lines in pages
                     for line in {line.strip() for line in lines if any(c.isalpha() for c in line)})
    return {line for line, count in counts.items() if count * 2 >= len(pages)}
