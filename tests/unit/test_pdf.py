"""A PDF's text as people read it (retrieval/pdf.py)."""

from __future__ import annotations

from pathlib import Path

from retrieval.documents import read_file
from retrieval.pdf import clean_pages, running_lines
from tests.documents import minimal_pdf

HEADER = "BASH(1) General Commands Manual BASH(1)"


def _pages(count: int) -> list[str]:
    return [f"{HEADER}\n\nSection {number} says the ﬁle holds {number} entries.\n•\n{number}\n\nGNU Bash 5.2"
            for number in range(1, count + 1)]


def test_running_headers_and_footers_are_dropped_and_the_text_kept() -> None:
    text = clean_pages(_pages(5))
    assert HEADER not in text and "GNU Bash 5.2" not in text
    assert all(f"Section {number} says the file holds {number} entries." in text for number in range(1, 6))
    assert text.count("•") == 5  # a lone bullet, brace or number is content, however often it repeats


def test_a_short_document_keeps_every_line() -> None:
    assert running_lines([page.splitlines() for page in _pages(3)]) == set() and HEADER in clean_pages(_pages(3))


def test_ligatures_and_typeset_characters_read_as_typed() -> None:
    text = clean_pages(["The ﬁrst ﬂag is −b and the   default is ˜/.bash_history."])
    assert text == "The first flag is -b and the default is ~/.bash_history."


def test_a_pdf_file_is_read_with_pdfminer(tmp_path: Path) -> None:
    path = tmp_path / "note.pdf"
    path.write_bytes(minimal_pdf("Founders Day is 14 September"))
    [document] = read_file(path, "note.pdf")
    assert document.text == "Founders Day is 14 September" and not document.markdown
