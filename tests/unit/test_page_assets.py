"""The page's files: vendored libraries are the npm releases named in VENDORED.md, and the markup works under the
strict Content-Security-Policy (no inline script, style or handlers; every element the script needs exists)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "assistant" / "static"


def test_vendored_files_match_their_recorded_hashes() -> None:
    table = (STATIC / "vendor" / "VENDORED.md").read_text()
    recorded = dict(re.findall(r"\| `([\w.]+\.js)`.*\| ([0-9a-f]{64}) \|", table))
    assert set(recorded) == {"marked.umd.js", "purify.min.js"}
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest, name
    for licence in ("marked.LICENSE.txt", "dompurify.LICENSE.txt"):
        assert (STATIC / "vendor" / licence).stat().st_size > 500


def test_the_markup_needs_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script> is blocked by the CSP"
    assert not re.search(r"\son\w+=", html), "inline event handlers are blocked by the CSP"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing may load from another origin"


def test_every_element_the_script_uses_is_in_the_page() -> None:
    html = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    used = set(re.findall(r"\$\(\"([\w-]+)\"\)", script))
    present = set(re.findall(r"\bid=\"([\w-]+)\"", html))
    assert used and used <= present, used - present
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
