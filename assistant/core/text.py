"""Questions as the router and the models should see them: NFKC-normalised, without control characters.

Full-width digits ("２＋２") become ASCII, a NUL or zero-width character disappears, so plain arithmetic typed or
pasted oddly still reaches the calculator. Characters the calculator reads as operators ("5²", "x³") are kept:
NFKC would turn them into plain digits and change the sum.
"""

from __future__ import annotations

import re
import unicodedata

from tools.parsing import UNICODE_OPERATORS

_KEPT = "".join(sorted(char for char in UNICODE_OPERATORS if unicodedata.normalize("NFKC", char) != char))
_SPLIT = re.compile(f"([{re.escape(_KEPT)}])") if _KEPT else None
_KEEP_CONTROLS = {"\n", "\t"}


def normalize_question(text: str) -> str:
    """``text`` in NFKC form (except the calculator's operator characters), with control and format characters
    (NUL, zero-width spaces, BOM, bidi overrides) removed and carriage returns turned into newlines."""
    parts = _SPLIT.split(text) if _SPLIT is not None else [text]
    normalized = "".join(part if part and part in _KEPT else unicodedata.normalize("NFKC", part) for part in parts)
    normalized = normalized.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(char for char in normalized
                   if char in _KEEP_CONTROLS or unicodedata.category(char) not in ("Cc", "Cf"))
