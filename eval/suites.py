"""The named evaluation suites: what each holds, which split it draws from, and its corpus.

- ``mixed-dev`` / ``mixed-test``: 500 items each, stratified like the old ``mixed`` suite (200 SQuAD facts, 120
  BIG-bench arithmetic spread over its 20 tasks, 100 gsm_symbolic word problems, 80 chat: the split's MT-bench
  conversations' first turns, topped up with AlpacaEval instructions), every item from one split.
- ``shift-nyt`` / ``shift-reddit`` / ``shift-amazon``: 200 SQuADShifts questions each, answered over that set's own
  paragraphs (not the SQuAD knowledge base). Test only: nothing is tuned on them.
- ``routing-dev`` / ``routing-test``: labelled questions for the router, disjoint from the mixed suite of their
  split. ``routing-test`` is the held-out routing figure: AlpacaEval instructions (human-written, not MT-bench),
  SQuADShifts questions, BIG-bench arithmetic and gsm_symbolic problems of the test split.
- the raw datasets (``squad-dev``, ``bigbench-arithmetic``, ``gsm-symbolic``, ``mt-bench``, ``alpaca-eval``), which
  span both splits and are for exploration, not for figures.
All tuning uses dev suites; reported figures come from test and shift suites (docs/eval/PROTOCOL.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eval.datasets import (
    GSM_SEED,
    EvalItem,
    Kind,
    alpaca_eval_items,
    bigbench_arithmetic_items,
    gsm_symbolic_items,
    mt_bench_items,
    squad_items,
    squad_shift_items,
)
from eval.splits import Split, split_of, squad_group
from retrieval.squad import SHIFT_NAMES, Paragraph, load_squad_dev, load_squad_shift

MIXED_SEED = 20261123
ROUTING_SEED = 20261124
SHIFT_SEED = 20261201
MIXED_COMPOSITION: dict[Kind, int] = {"fact": 200, "arithmetic": 120, "word_problem": 100, "chat": 80}
SHIFT_SIZE = 200
ESCALATION_SEED = 20261202
ESCALATION_FACTS = 600
UNANSWERABLE_SIZE = 200


@dataclass(frozen=True)
class Suite:
    """A suite's items, the split they come from (``both`` for raw datasets), and its own corpus if it has one."""

    name: str
    items: list[EvalItem]
    split: str
    corpus: tuple[Paragraph, ...] | None = None
    corpus_name: str | None = None
    answerable: bool = True


def _sample(generator: random.Random, items: list[EvalItem], count: int) -> list[EvalItem]:
    return generator.sample(items, min(count, len(items)))


def mixed_items(cache_dir: Path, split: Split, *, progress: bool = True,
                composition: dict[Kind, int] | None = None) -> list[EvalItem]:
    """``mixed-<split>``: facts, arithmetic, word problems and chat of one split, stratified and seeded."""
    counts = composition or MIXED_COMPOSITION
    generator = random.Random(MIXED_SEED)  # noqa: S311 - a reproducible sample, not a secret
    suite: list[EvalItem] = []
    facts = [item for item in squad_items(cache_dir, progress=progress) if item.split == split]
    suite += _sample(generator, facts, counts["fact"])
    by_task: dict[str, list[EvalItem]] = {}
    for item in bigbench_arithmetic_items(cache_dir, progress=progress):
        if item.split == split:
            by_task.setdefault(item.source, []).append(item)
    per_task, extra = divmod(counts["arithmetic"], len(by_task))
    for position, task in enumerate(sorted(by_task)):
        suite += _sample(generator, by_task[task], per_task + (1 if position < extra else 0))
    suite += gsm_symbolic_items(counts["word_problem"], seed=GSM_SEED, split=split)
    chat = [item for item in mt_bench_items(cache_dir, progress=progress) if item.split == split]
    chat = chat[: counts["chat"]]
    instructions = [item for item in alpaca_eval_items(cache_dir, progress=progress) if item.split == split]
    suite += chat + _sample(generator, instructions, counts["chat"] - len(chat))
    return suite


def shift_suite(cache_dir: Path, name: str, *, progress: bool = True, size: int = SHIFT_SIZE) -> Suite:
    """``shift-<name>``: ``size`` seeded SQuADShifts questions and that set's paragraphs as the corpus."""
    data = load_squad_shift(cache_dir, name, progress=progress)
    generator = random.Random(f"{SHIFT_SEED}:{name}")  # noqa: S311 - a reproducible sample, not a secret
    items = _sample(generator, squad_shift_items(cache_dir, name, progress=False), size)
    return Suite(f"shift-{name}", items, "test", data.paragraphs, f"squadshifts-{name}")


def escalation_fact_items(cache_dir: Path, *, progress: bool = True, size: int = ESCALATION_FACTS) -> list[EvalItem]:
    """``facts-dev``: more dev-split SQuAD questions to fit the escalation models on, disjoint from ``mixed-dev`` and
    ``routing-dev``."""
    taken = {item.id for item in routing_items(cache_dir, "dev", progress=progress)}
    taken |= {item.id for item in mixed_items(cache_dir, "dev", progress=False)}
    generator = random.Random(f"{ESCALATION_SEED}:facts")  # noqa: S311 - a reproducible sample, not a secret
    fresh = [item for item in squad_items(cache_dir, progress=False) if item.split == "dev" and item.id not in taken]
    return _sample(generator, fresh, size)


def unanswerable_dev_suite(cache_dir: Path, *, progress: bool = True, size: int = UNANSWERABLE_SIZE) -> Suite:
    """``unanswerable-dev``: dev-split SQuAD questions asked over the test-split articles' paragraphs only, so
    their answers are in no document (the corpus holds other Wikipedia articles)."""
    data = load_squad_dev(cache_dir, progress=progress)
    corpus = tuple(paragraph for paragraph in data.paragraphs if split_of(squad_group(paragraph.title)) == "test")
    taken = {item.id for item in escalation_fact_items(cache_dir, progress=False)}
    generator = random.Random(f"{ESCALATION_SEED}:unanswerable")  # noqa: S311 - a reproducible sample
    fresh = [item for item in squad_items(cache_dir, progress=False) if item.split == "dev" and item.id not in taken]
    return Suite("unanswerable-dev", _sample(generator, fresh, size), "dev", corpus, "squad-test-articles",
                 answerable=False)


def unanswerable_test_suite(cache_dir: Path, *, progress: bool = True, size: int = UNANSWERABLE_SIZE) -> Suite:
    """``unanswerable-test``: SQuADShifts questions (a third from each set) asked over the default SQuAD knowledge
    base, which holds none of their documents."""
    generator = random.Random(f"{ESCALATION_SEED}:unanswerable-test")  # noqa: S311 - a reproducible sample
    items = [item for position, name in enumerate(SHIFT_NAMES)
             for item in _sample(generator, squad_shift_items(cache_dir, name, progress=progress),
                                 size - 2 * (size // 3) if position == 0 else size // 3)]
    return Suite("unanswerable-test", items, "test", answerable=False)


def routing_items(cache_dir: Path, split: Split, *, progress: bool = True) -> list[EvalItem]:
    """Labelled routing questions of one split, disjoint from ``mixed-<split>``.

    dev: 300 SQuAD questions, 100 arithmetic, 100 word problems, the split's AlpacaEval instructions, and the
    MT-bench follow-up turns (routed in their thread). test: the split's AlpacaEval instructions (at least 200),
    100 SQuADShifts questions (a third from each set), 100 arithmetic and 100 word problems.
    """
    mixed = mixed_items(cache_dir, split, progress=progress)
    taken = {item.id for item in mixed} | {item.question for item in mixed}
    generator = random.Random(f"{ROUTING_SEED}:{split}")  # noqa: S311 - a reproducible sample, not a secret

    def fresh(items: list[EvalItem]) -> list[EvalItem]:
        return [item for item in items if item.split == split and item.id not in taken and item.question not in taken]

    arithmetic = _sample(generator, fresh(bigbench_arithmetic_items(cache_dir, progress=progress)), 100)
    problems = fresh(gsm_symbolic_items(300, seed=GSM_SEED + 1, split=split))[:100]
    chat = fresh(alpaca_eval_items(cache_dir, progress=progress))
    if split == "dev":
        facts = _sample(generator, fresh(squad_items(cache_dir, progress=progress)), 300)
        follow_ups = [item for item in mt_bench_items(cache_dir, progress=progress, turn=2) if item.split == split]
        return facts + arithmetic + problems + chat + follow_ups
    shifts = [item for position, name in enumerate(SHIFT_NAMES)
              for item in _sample(generator, squad_shift_items(cache_dir, name, progress=progress),
                                  34 if position == 0 else 33)]
    return shifts + arithmetic + problems + chat


def suite_loaders(cache_dir: Path, *, progress: bool = True) -> dict[str, Callable[[], Suite]]:
    """Every named suite, loaded on demand."""
    loaders: dict[str, Callable[[], Suite]] = {
        "mixed-dev": lambda: Suite("mixed-dev", mixed_items(cache_dir, "dev", progress=progress), "dev"),
        "mixed-test": lambda: Suite("mixed-test", mixed_items(cache_dir, "test", progress=progress), "test"),
        "routing-dev": lambda: Suite("routing-dev", routing_items(cache_dir, "dev", progress=progress), "dev"),
        "routing-test": lambda: Suite("routing-test", routing_items(cache_dir, "test", progress=progress), "test"),
        "facts-dev": lambda: Suite("facts-dev", escalation_fact_items(cache_dir, progress=progress), "dev"),
        "unanswerable-dev": lambda: unanswerable_dev_suite(cache_dir, progress=progress),
        "unanswerable-test": lambda: unanswerable_test_suite(cache_dir, progress=progress),
        "squad-dev": lambda: Suite("squad-dev", squad_items(cache_dir, progress=progress), "both"),
        "bigbench-arithmetic": lambda: Suite("bigbench-arithmetic",
                                             bigbench_arithmetic_items(cache_dir, progress=progress), "both"),
        "gsm-symbolic": lambda: Suite("gsm-symbolic", gsm_symbolic_items(100, seed=GSM_SEED), "both"),
        "mt-bench": lambda: Suite("mt-bench", mt_bench_items(cache_dir, progress=progress), "both"),
        "alpaca-eval": lambda: Suite("alpaca-eval", alpaca_eval_items(cache_dir, progress=progress), "both"),
    }
    for name in SHIFT_NAMES:
        loaders[f"shift-{name}"] = lambda name=name: shift_suite(cache_dir, name, progress=progress)  # type: ignore[misc]
    return loaders


def available_suites() -> dict[str, str]:
    """Suite names accepted by the eval CLI, with a one-line description."""
    return {
        "mixed-dev": "500 dev items: 200 SQuAD facts, 120 arithmetic, 100 word problems, 80 chat (tune on this)",
        "mixed-test": "500 test items, the same mix (report on this)",
        "shift-nyt": "200 SQuADShifts New York Times questions over their own 2,017 paragraphs (test)",
        "shift-reddit": "200 SQuADShifts Reddit questions over their own 2,035 comments (test)",
        "shift-amazon": "200 SQuADShifts Amazon review questions over their own 2,050 reviews (test)",
        "facts-dev": "600 more dev SQuAD questions to fit the escalation models on (disjoint from the dev suites)",
        "unanswerable-dev": "200 dev SQuAD questions over the test articles' paragraphs only: not in the documents",
        "unanswerable-test": "200 SQuADShifts questions over the SQuAD knowledge base: not in the documents (test)",
        "routing-dev": "labelled routing questions of the dev split, MT-bench follow-ups in their threads",
        "routing-test": "held-out routing questions: AlpacaEval, SQuADShifts, arithmetic, word problems (test)",
        "squad-dev": "10,565 SQuAD v1.1 dev questions over 2,067 Wikipedia paragraphs, both splits (EM/F1)",
        "bigbench-arithmetic": "20,000 plain arithmetic questions, 1-5 digits, + - * /, both splits",
        "gsm-symbolic": "100 seeded GSM8K-style word problems from reasoning-gym, both splits",
        "mt-bench": "80 open-ended chat questions, both splits (routing and cost only)",
        "alpaca-eval": "805 human-written instructions, both splits (routing and cost only)",
        "PATH.jsonl": "your own file: question, answers, optional kind and id per line",
    }
