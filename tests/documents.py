"""Test documents built in code: a minimal PDF, and a small PDF that takes seconds a page to parse."""

from __future__ import annotations

import zlib


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 10 50 Td ({text}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 100]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    return _pdf(objects)


def slow_pdf(pages: int = 2, megabytes: int = 1) -> bytes:
    """A few KB that unpack to pages sharing one ``megabytes`` MB content stream of text operators: pypdf spends
    about 2.5 s a page per MB extracting its text (the outside probe's 37 KB file took about half an hour)."""
    content = zlib.compress(b"BT /F1 12 Tf " + b"(a) Tj " * (megabytes * 1024 * 1024 // 7) + b"ET", 9)
    font = b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % (4 + page)
                                                                       for page in range(pages)), pages),
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] " + font + b" /Contents 3 0 R >>"] * pages
    return _pdf(objects)


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF file of numbered ``objects`` (the first is the catalog) with a correct cross-reference table."""
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(output)
