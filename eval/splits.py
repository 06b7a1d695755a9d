"""The fixed dev/test split: every dataset item belongs to a group, and a group's split is a hash of its name.

Groups are what must never straddle the split: a SQuAD article (all its paragraphs and questions), a gsm_symbolic
template (every problem it generates), an MT-bench conversation (both turns), a single BIG-bench arithmetic item or
AlpacaEval instruction. The rule needs no stored list, gives the same answer on every machine and cannot be tuned:
``split_of(group)`` is the parity of the first byte of ``sha256(SALT | group)``. docs/eval/PROTOCOL.md states it.

A quarter of HotpotQA (the out-of-domain set) is a reserved test: ``reserved(group)`` picks it by the second byte
of the same hash, and the loader drops those questions before they become items, so the project never loads them.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["dev", "test"]
SPLITS: tuple[Split, ...] = ("dev", "test")
SALT = "small-first-assistant/splits/v1"


TEST_ONLY = ("hotpotqa:",)  # groups of sources nothing is ever tuned on: the out-of-domain set
FIXED: dict[str, Split] = {"docs-dev:": "dev", "docs-test:": "test"}
"""Groups whose split is fixed by hand: the documents suite's, split by document so each format is in both."""


def split_of(group: str) -> Split:
    """The split of every item in ``group`` (e.g. ``squad-article:Oxygen``); a test-only source's are all test."""
    if group.startswith(TEST_ONLY):
        return "test"
    fixed = next((split for prefix, split in FIXED.items() if group.startswith(prefix)), None)
    if fixed is not None:
        return fixed
    digest = hashlib.sha256(f"{SALT}|{group}".encode()).digest()
    return "test" if digest[0] % 2 else "dev"


def squad_group(title: str) -> str:
    """The group of a SQuAD article's questions."""
    return f"squad-article:{title}"


def gsm_group(template: int) -> str:
    """The group of every problem one gsm_symbolic template generates."""
    return f"gsm-template:{template}"


def mt_bench_group(question_id: int | str) -> str:
    """The group of an MT-bench conversation (both turns)."""
    return f"mt-bench:{question_id}"


def reserved(group: str) -> bool:
    """True for the reserved test's groups (a quarter of HotpotQA): never loaded, tuned on or reported."""
    return hashlib.sha256(f"{SALT}|{group}".encode()).digest()[1] % 4 == 0


def hotpotqa_group(question_id: str) -> str:
    """The group of one HotpotQA question (each brings its own ten paragraphs)."""
    return f"hotpotqa:{question_id}"
