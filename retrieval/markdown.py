"""Markdown structure for chunking and evidence: headings, tables, lists and code blocks kept whole.

Every converted document (HTML, Word, PowerPoint, Excel, CSV, EPUB) and every ``.md`` file is markdown here. A chunk
never starts inside a table, a list or a code block unless the block alone is larger than a chunk; a table split
across chunks repeats its header rows in each piece. Each chunk carries the headings above it (``section``).
``plain_text`` strips the markup for embedding, evidence scoring and the prompt; the markdown is kept for display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from retrieval.chunking import SENTENCE_END

BlockKind = Literal["heading", "code", "table", "list", "paragraph"]

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
"""A list item's marker (``-``, ``*``, ``+``, ``1.``, ``1)``) and the space after it."""
SECTION_SEPARATOR = " › "
_ITEM_START = re.compile(r"\n(?=\s*(?:[-*+]|\d{1,3}[.)])\s+)")


def place(title: str, section: str) -> str:
    """Where a passage sits, for people and the prompt: its document's title and the headings above it ("Policy ›
    Public holidays"); the title once when the headings start with it."""
    if not section or section.startswith(title):
        return section or title
    return f"{title}{SECTION_SEPARATOR}{section}"


@dataclass(frozen=True)
class Block:
    """One block of a markdown text, as character offsets; ``section`` is the headings above it."""

    kind: BlockKind
    start: int
    end: int
    section: str


@dataclass(frozen=True)
class MarkdownChunk:
    """A chunk: its text (a table piece repeats the table's header), its place in the document and its section."""

    text: str
    start: int
    end: int
    section: str


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, without its newline."""
    spans, position = [], 0
    for line in text.splitlines(keepends=True):
        spans.append((position, position + len(line.rstrip("\r\n"))))
        position += len(line)
    return spans


def heading_text(line: str) -> str:
    """A heading line's words without its markup."""
    match = _HEADING.match(line)
    return plain_text(match.group(2)) if match else ""


def blocks(text: str) -> list[Block]:
    """The blocks of a markdown text, in order, each with the heading path above it."""
    spans = _lines(text)
    lines = [text[start:end] for start, end in spans]
    result: list[Block] = []
    path: list[tuple[int, str]] = []
    index = 0

    def section() -> str:
        return SECTION_SEPARATOR.join(title for _, title in path)

    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            path[:] = [(lvl, title) for lvl, title in path if lvl < level] + [(level, heading_text(line))]
            result.append(Block("heading", *spans[index], section()))
            index += 1
            continue
        kind: BlockKind
        last = index
        if _FENCE.match(line):
            kind = "code"
            last = index + 1
            while last < len(lines) and not _FENCE.match(lines[last]):
                last += 1
            last = min(last, len(lines) - 1)
        elif _TABLE_ROW.match(line):
            kind = "table"
            while last + 1 < len(lines) and _TABLE_ROW.match(lines[last + 1]):
                last += 1
        elif LIST_ITEM.match(line):
            kind = "list"
            while last + 1 < len(lines):
                following = lines[last + 1]
                continued = LIST_ITEM.match(following) or (following.strip() and following[:1].isspace())
                item_after_blank = not following.strip() and last + 2 < len(lines) and LIST_ITEM.match(
                    lines[last + 2])
                if not (continued or item_after_blank):
                    break
                last += 1
        else:
            kind = "paragraph"
            while last + 1 < len(lines):
                following = lines[last + 1]
                if not following.strip() or _HEADING.match(following) or _FENCE.match(following) or \
                        _TABLE_ROW.match(following) or LIST_ITEM.match(following):
                    break
                last += 1
        result.append(Block(kind, spans[index][0], spans[last][1], section()))
        index = last + 1
    return result


def _table_pieces(text: str, block: Block, max_chars: int) -> list[MarkdownChunk]:
    """A table too large for one chunk, cut between rows; every piece starts with the header rows."""
    rows = [(block.start + start, block.start + end) for start, end in _lines(text[block.start:block.end])]
    header_count = 2 if len(rows) > 1 and _TABLE_RULE.match(text[rows[1][0]:rows[1][1]]) else 1
    header = "\n".join(text[start:end] for start, end in rows[:header_count])
    pieces: list[MarkdownChunk] = []
    first = header_count
    while first < len(rows):
        last, size = first, len(header) + 1 + rows[first][1] - rows[first][0]
        while last + 1 < len(rows) and size + 1 + rows[last + 1][1] - rows[last + 1][0] <= max_chars:
            last += 1
            size += 1 + rows[last][1] - rows[last][0]
        body = text[rows[first][0]:rows[last][1]]
        pieces.append(MarkdownChunk(f"{header}\n{body}", rows[first][0], rows[last][1], block.section))
        first = last + 1
    return pieces or [MarkdownChunk(text[block.start:block.end], block.start, block.end, block.section)]


def _line_pieces(text: str, block: Block, max_chars: int) -> list[MarkdownChunk]:
    """A code block or list too large for one chunk, cut between lines (a single long line between words)."""
    pieces: list[MarkdownChunk] = []
    start = block.start
    while start < block.end:
        end = min(block.end, start + max_chars)
        if end < block.end:
            cut = text.rfind("\n", start + 1, end)
            if cut <= start:
                cut = text.rfind(" ", start + 1, end)
            end = cut if cut > start else end
        if text[start:end].strip():
            pieces.append(MarkdownChunk(text[start:end].strip("\n"), start, end, block.section))
        start = end
        while start < block.end and text[start] == "\n":
            start += 1
    return pieces


def _code_pieces(text: str, block: Block, max_chars: int) -> list[MarkdownChunk]:
    """A code block too large for one chunk, cut between lines; every piece is fenced as the block was, so a piece
    is still code (each line a unit of evidence, shown as code) and not one run-on paragraph."""
    body = text[block.start:block.end]
    opening = body.split("\n", 1)[0]
    closing = opening.strip()[:3]
    room = max_chars - len(opening) - len(closing) - 2
    pieces = []
    for piece in _line_pieces(text, block, max(room, 20)):
        lines = [line for line in piece.text.split("\n") if not _FENCE.match(line)]
        if lines:
            pieces.append(MarkdownChunk("\n".join([opening, *lines, closing]), piece.start, piece.end, piece.section))
    return pieces or [MarkdownChunk(body, block.start, block.end, block.section)]


def chunk_markdown(text: str, max_chars: int = 1000) -> list[MarkdownChunk]:
    """Chunks of at most ``max_chars`` characters made of whole blocks, each under one heading path.

    A heading starts a new chunk and stays with the content below it; blocks larger than a chunk are cut between
    rows or lines. Paragraphs longer than a chunk are cut between words.
    """
    if max_chars < 50:
        raise ValueError("max_chars must be at least 50")
    chunks: list[MarkdownChunk] = []
    current: list[Block] = []

    def flush() -> None:
        if current:  # headings with nothing under them are kept too: nothing of the text is lost
            start, end = current[0].start, current[-1].end
            chunks.append(MarkdownChunk(text[start:end], start, end, current[-1].section))
        current.clear()

    for block in blocks(text):
        size = block.end - block.start
        if block.kind == "heading":
            if current and any(item.kind != "heading" for item in current):
                flush()
            current.append(block)
            continue
        if current and (block.end - current[0].start > max_chars or block.section != current[-1].section):
            flush()
        if size > max_chars:
            flush()
            cut = {"table": _table_pieces, "code": _code_pieces}.get(block.kind, _line_pieces)
            chunks.extend(cut(text, block, max_chars))
            continue
        current.append(block)
    flush()
    return chunks


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
# Underscores make emphasis only at word edges (CommonMark): n_gpu_layers and DEB_GAIN_ROOT_CMD are words.
_EMPHASIS = re.compile(r"(\*\*|\*|`)(?=\S)(.+?)(?<=\S)\1|(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\3(?!\w)")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation: the character itself
_SHELTER = 0xE000  # escaped characters wait in the private-use area while markup is removed
_SHELTERED = re.compile("[\ue000-\ue07f]")


def _unemphasised(match: re.Match[str]) -> str:
    return match.group(2) if match.group(2) is not None else match.group(4)


def table_row_text(header: list[str], cells: list[str]) -> str:
    """A table row as "Header: cell; Header: cell" (the cells alone when the header does not fit)."""
    if len(header) == len(cells):
        return "; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(header, cells, strict=True)
                         if cell)
    return "; ".join(cell for cell in cells if cell)


def split_row(line: str) -> list[str]:
    """The cells of a markdown table row, without markup."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [plain_text(cell.strip()) for cell in re.split(r"(?<!\\)\|", inner)]


def table_cells(table: str) -> tuple[list[str], list[list[str]]]:
    """A markdown table's header cells (none when its second line is no rule) and the cells of its other rows."""
    rows = [line for line in table.splitlines() if line.strip()]
    if len(rows) > 1 and _TABLE_RULE.match(rows[1]):
        return split_row(rows[0]), [split_row(row) for row in rows[2:]]
    return [], [split_row(row) for row in rows]


def _empty_above(header: str, first: str) -> bool:
    """Whether ``header`` is an empty row with as many cells as the table row ``first``, which has some."""
    if not _TABLE_ROW.match(first):
        return False
    names, cells = split_row(header), split_row(first)
    return not any(names) and any(cells) and len(cells) == len(names)


def headed_tables(markdown: str) -> str:
    """``markdown`` with every table whose header row is empty headed by its first row instead.

    Word and HTML tables without header cells come out of the converter with an empty header row above the real one
    (``|  |  |`` then the rule, then "Mode | What it does"): its rows would be read as cells without column names."""
    lines = markdown.split("\n")
    result: list[str] = []
    index = 0
    while index < len(lines):
        header, rule, first = [*lines[index:index + 3], "", ""][:3]
        if _TABLE_ROW.match(header) and _TABLE_RULE.match(rule) and _empty_above(header, first):
            result += [first, rule]
            index += 3
        else:
            result.append(header)
            index += 1
    return "\n".join(result)


def list_items(block: str) -> list[str]:
    """The items of a markdown list block, each with its marker (``LIST_ITEM`` matches it) and its lines."""
    return _ITEM_START.split(block)


def _list_marker(marker: re.Match[str]) -> str:
    """A list item's marker without markup: ``- `` for a bullet; an ordered item keeps its number (``6. ``), which
    a reader may be asked for ("Which section covers trademarks?")."""
    number = marker.group(0).strip().rstrip(".)")
    return f"{number}. " if number.isdigit() else "- "


def plain_text(markdown: str) -> str:
    """Markdown without its markup: heading marks, emphasis, links (their words kept), tags, table rules and pipes,
    code fences (the code kept)."""
    lines = []
    for line in markdown.splitlines():
        if _FENCE.match(line) or _TABLE_RULE.match(line):
            continue
        heading = _HEADING.match(line)
        if heading:
            line = heading.group(2)
        elif _TABLE_ROW.match(line):
            line = " | ".join(split_row(line))
            lines.append(line)
            continue
        line = LIST_ITEM.sub(_list_marker, line, count=1)
        line = _ESCAPED.sub(lambda escaped: chr(_SHELTER + ord(escaped.group(1))), line)
        line = _EMPHASIS.sub(_unemphasised, _TAG.sub("", _LINK.sub(r"\1", line)))
        lines.append(_SHELTERED.sub(lambda sheltered: chr(ord(sheltered.group(0)) - _SHELTER), line))
    return "\n".join(lines).strip()


_STRUCTURE_START = re.compile(r"\s*(#|\||[-*+]\s|\d{1,3}[.)]\s|```|~~~)")
def sentences(text: str) -> list[str]:
    """``text`` split into sentences (after . ! or ? and before a capital, digit, quote or bracket)."""
    return [sentence.strip() for sentence in SENTENCE_END.split(text) if sentence.strip()]


def evidence_units(markdown: str) -> list[str]:
    """The units evidence is chosen from, without markup: a table row read with its header ("Region: us-east1;
    Impact: 560"), a list item, a line of code, a heading, or a sentence of a paragraph. A text without markdown
    structure (one line of prose, as every reading-comprehension paragraph) gives its sentences, untouched."""
    return [text for _, text in kinded_evidence_units(markdown)]


def kinded_evidence_units(markdown: str) -> list[tuple[str, str]]:
    """:func:`evidence_units`, each with the kind of block it comes from (``table``, ``code``, ``list``,
    ``heading`` or ``prose``)."""
    if "\n" not in markdown.strip() and not _STRUCTURE_START.match(markdown):
        return [("prose", sentence) for sentence in sentences(markdown)]
    units: list[tuple[str, str]] = []
    for block in blocks(markdown):
        body = markdown[block.start:block.end]
        if block.kind == "table":
            header, rows = table_cells(body)
            units += [("table", table_row_text(header, cells)) for cells in rows]
        elif block.kind == "code":
            lines = [line.strip() for line in body.splitlines()[1:-1] if line.strip()] or [body]
            units += [("code", line) for line in lines]
        elif block.kind == "list":
            units += [("list", " ".join(plain_text(item).split())) for item in list_items(body)]
        elif block.kind == "heading":
            units.append(("heading", heading_text(body)))
        else:
            text = " ".join(plain_text(body).split()) if "\n" in body else plain_text(body)
            units += [("prose", sentence) for sentence in sentences(text)]
    return [(kind, text) for kind, text in units if text]
