"""People's document formats: conversion keeps headings, tables, lists and code; chunks carry their headings; a
table split across chunks repeats its header; evidence reads a table row with its header."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from assistant.documents import UploadRejectedError, check_upload
from eval.documents import csv_to_xlsx, markdown_to_docx
from retrieval.documents import SUPPORTED_SUFFIXES, read_file, read_paths
from retrieval.errors import RetrievalError
from retrieval.markdown import blocks, chunk_markdown, evidence_units, plain_text, split_row

POLICY = """# Holiday policy

Full-time employees get **27 days** of paid annual leave.

## Approvals

- Up to 10 days: your team lead approves.
- More than 10 days: Mira Thorne approves.

## Public holidays

| Holiday | Date |
| --- | --- |
| Founders' Day | 14 September |
| Winter closure | 24 December |

## Tools

```bash
leave request --days 3
```
"""


def _docx(path: Path, markdown: str = POLICY) -> Path:
    path.write_bytes(markdown_to_docx(markdown))
    return path


def test_a_word_file_keeps_its_headings_lists_tables_and_code(tmp_path: Path) -> None:
    [document] = read_file(_docx(tmp_path / "policy.docx"), "policy.docx")
    assert document.markdown and document.title == "Holiday policy"
    text = document.text
    assert "# Holiday policy" in text and "## Public holidays" in text
    assert "| Founders' Day | 14 September |" in text
    assert "Mira Thorne approves" in text and "leave request --days 3" in text
    kinds = [block.kind for block in blocks(text)]
    assert {"heading", "table", "list", "paragraph"} <= set(kinds)


def test_a_table_without_header_cells_is_headed_by_its_first_row(tmp_path: Path) -> None:
    """Word tables (and HTML tables without <th>) came out with an empty header row above the real one, so every
    row's cells lost their column names in the evidence ("tensor; EXPERIMENTAL ..." for "Mode: tensor; ...")."""
    [word] = read_file(_docx(tmp_path / "policy.docx"), "policy.docx")
    html = tmp_path / "modes.html"
    html.write_text("<html><body><h1>Modes</h1><table><tr><td>Mode</td><td>Effect</td></tr>"
                    "<tr><td>row</td><td>Deprecated.</td></tr></table></body></html>", encoding="utf-8")
    [page] = read_file(html, "modes.html")
    assert "| Holiday | Date |\n| --- | --- |\n| Founders' Day |" in word.text
    assert "Holiday: Founders' Day; Date: 14 September" in evidence_units(word.text)
    assert "Mode: row; Effect: Deprecated." in evidence_units(page.text)
    assert not any(line.replace("|", "").strip() == "" and line.startswith("|")
                   for line in (word.text + page.text).splitlines())


def test_html_csv_and_excel_become_markdown_with_their_structure(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_text("<html><head><title>Kettle manual</title></head><body><h1>Kettle</h1><h2>Warranty</h2>"
                    "<p>The warranty lasts <b>38 months</b>.</p><ul><li>Descale monthly.</li><li>Never boil dry."
                    "</li></ul><table><tr><th>Model</th><th>Litres</th></tr><tr><td>Q7</td><td>1.7</td></tr></table>"
                    "<pre><code>kettle --reset</code></pre></body></html>")
    [page] = read_file(html, "page.html")
    assert page.title == "Kettle manual" and "## Warranty" in page.text and "| Q7 | 1.7 |" in page.text
    assert "kettle --reset" in page.text and "* Descale monthly." in page.text
    rows = [["Name", "TDP"], ["AMD EPYC 7763", "280"], ["Intel Xeon Gold 6248R", "205"]]
    table = tmp_path / "cpus.csv"
    with table.open("w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    [sheet] = read_file(table, "cpus.csv")
    assert "| AMD EPYC 7763 | 280 |" in sheet.text and sheet.markdown
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    workbook = tmp_path / "cpus.xlsx"
    workbook.write_bytes(csv_to_xlsx(buffer.getvalue().encode(), "cpus"))
    [excel] = read_file(workbook, "cpus.xlsx")
    assert "## cpus" in excel.text and "| Intel Xeon Gold 6248R | 205 |" in excel.text


def test_powerpoint_and_epub_are_read(tmp_path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Revenue grew 12% to 4.2 million."
    deck.save(str(tmp_path / "deck.pptx"))
    [slides] = read_file(tmp_path / "deck.pptx", "deck.pptx")
    assert "Quarterly results" in slides.text and "Revenue grew 12%" in slides.text
    book = tmp_path / "book.epub"
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" '
                         'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile '
                         'full-path="content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("content.opf", '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                         'version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Field guide'
                         '</dc:title></metadata><manifest><item id="c1" href="c1.xhtml" '
                         'media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c1"/></spine>'
                         '</package>')
        archive.writestr("c1.xhtml", "<html><body><h1>Owls</h1><p>The barn owl hunts at night.</p></body></html>")
    [guide] = read_file(book, "book.epub")
    assert "# Owls" in guide.text and "barn owl hunts at night" in guide.text


def test_a_broken_office_file_is_a_clear_error_and_a_folder_reports_it(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    _docx(tmp_path / "docs" / "fine.docx")
    report = read_paths([tmp_path / "docs"])
    assert [document.doc_id for document in report.documents] == ["docs/fine.docx"]
    [(path, reason)] = report.failures
    assert path.endswith("broken.docx") and "could not be converted" in reason
    with pytest.raises(RetrievalError, match="could not be converted"):
        read_file(tmp_path / "docs" / "broken.docx", "x")


@pytest.mark.parametrize(("name", "data", "status"), [
    ("report.docx", b"%PDF-1.4 a pdf named docx", 415),
    ("slides.pptx", b"plain text", 415),
    ("sheet.xlsx", b"\x00\x01", 415),
    ("page.html", b"\xff\xfe\x00bad", 415),
])
def test_uploads_of_the_new_types_are_checked_by_content(name: str, data: bytes, status: int) -> None:
    with pytest.raises(UploadRejectedError) as refused:
        check_upload(name, data, 1_000_000)
    assert refused.value.status == status


def test_uploads_of_the_new_types_are_accepted_and_named_safely(tmp_path: Path) -> None:
    assert {".docx", ".pptx", ".xlsx", ".html", ".csv", ".epub"} <= set(SUPPORTED_SUFFIXES)
    assert check_upload("../../Q3 report.docx", markdown_to_docx(POLICY), 1_000_000) == "Q3 report.docx"
    assert check_upload("prices.csv", b"item,price\ntea,3\n", 1_000_000) == "prices.csv"


def test_chunks_keep_blocks_whole_and_carry_their_headings() -> None:
    chunks = chunk_markdown(POLICY, 200)
    by_text = {chunk.section: chunk.text for chunk in chunks}
    assert by_text["Holiday policy › Public holidays"].count("|") >= 9  # the whole table in one chunk
    assert "leave request --days 3" in by_text["Holiday policy › Tools"]
    assert all(chunk.text == POLICY[chunk.start:chunk.end] for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks).count("Founders' Day") == 1


def test_a_table_larger_than_a_chunk_is_cut_between_rows_with_its_header_repeated() -> None:
    rows = "\n".join(f"| cpu-{number} | {100 + number} |" for number in range(60))
    markdown = f"# CPUs\n\n| Name | TDP |\n| --- | --- |\n{rows}\n"
    chunks = chunk_markdown(markdown, 300)
    assert len(chunks) > 3 and all(len(chunk.text) <= 300 for chunk in chunks[1:])
    assert all(chunk.text.startswith("| Name | TDP |\n| --- | --- |\n") for chunk in chunks if "cpu-" in chunk.text)
    assert sum(chunk.text.count("cpu-") for chunk in chunks) == 60  # every row once
    assert "Name: cpu-7; TDP: 107" in evidence_units(chunks[1].text) or \
        any("Name: cpu-7; TDP: 107" in evidence_units(chunk.text) for chunk in chunks)


def test_evidence_reads_rows_items_and_sentences_without_markup() -> None:
    units = evidence_units(POLICY)
    assert "Holiday: Founders' Day; Date: 14 September" in units
    assert "- More than 10 days: Mira Thorne approves." in units
    assert "Full-time employees get 27 days of paid annual leave." in units
    assert "leave request --days 3" in units
    plain = "Super Bowl 50 was an American football game. The Broncos won."
    assert evidence_units(plain) == ["Super Bowl 50 was an American football game.", "The Broncos won."]
    assert plain_text("## A **bold** [link](http://x) `code`") == "A bold link code"


def test_an_ordered_list_keeps_its_numbers() -> None:
    """A numbered clause's number is content ("Which section covers trademarks?": 6); bullets lose their marker."""
    licence = ("TERMS AND CONDITIONS\n\n   6. Trademarks. This License does not grant permission.\n\n"
               "   7) Disclaimer of Warranty. Unless required by law.\n\n- a bullet")
    units = evidence_units(licence)
    assert "6. Trademarks. This License does not grant permission." in units
    assert "7. Disclaimer of Warranty. Unless required by law." in units
    assert "- a bullet" in units
    assert plain_text("12. twelfth item") == "12. twelfth item"


def test_identifiers_with_underscores_survive_plain_text() -> None:
    """Underscores inside a word are not emphasis (CommonMark), and an escaped one (markitdown writes ``GGML\\_CUDA``
    for a Word file's "GGML_CUDA") is the character itself: both reached the reader as "GGML\\CUDA\\P2P" or
    "DEBGAINROOT_CMD" (found on docs-dev's multi-GPU page and rootless-builds spec)."""
    assert plain_text("set GGML\\_CUDA\\_P2P to any value") == "set GGML_CUDA_P2P to any value"
    assert plain_text("compile with -DGGML\\_HIP\\_RCCL=ON; it is \\*disabled\\* by default") == (
        "compile with -DGGML_HIP_RCCL=ON; it is *disabled* by default")
    assert plain_text("export DEB_GAIN_ROOT_CMD and n_gpu_layers") == "export DEB_GAIN_ROOT_CMD and n_gpu_layers"
    assert plain_text("an _emphasised_ word, a __strong__ one, *starred* and **bold**, a\\\\b") == (
        "an emphasised word, a strong one, starred and bold, a\\b")
    assert split_row("| a \\| b | c_d |") == ["a | b", "c_d"]  # an escaped pipe is inside its cell


def test_a_code_block_cut_into_chunks_stays_code_in_every_chunk() -> None:
    """The continuation of a cut code block had no fence, so it read as one run-on paragraph: one evidence unit of a
    thousand characters, over the budget, and llama-bench's "-b, --batch-size <n> (default: 2048)" never reached the
    reader (docs-dev)."""
    options = "\n".join(f"  -o{n}, --option-{n} <n>     (default: {n * 100})" for n in range(40))
    text = f"# Tool\n\n```sh\nusage: tool [options]\n{options}\n```\n\nAfter."
    pieces = [chunk for chunk in chunk_markdown(text, 400) if "option" in chunk.text]
    assert len(pieces) > 2 and all(len(piece.text) <= 400 for piece in pieces)
    assert all(piece.text.startswith("```sh\n") and piece.text.endswith("\n```") for piece in pieces)
    units = [unit for piece in pieces for unit in evidence_units(piece.text)]
    assert "-o20, --option-20 <n>     (default: 2000)" in units
    assert sum(piece.text.count("--option-") for piece in pieces) == 40  # nothing lost or repeated
