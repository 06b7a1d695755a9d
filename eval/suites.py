"""The named evaluation suites: what each holds, which split it draws from, and its corpus.

- ``mixed-dev`` / ``mixed-test``: 500 items each (200 SQuAD v2.0 answerable questions over the 1,204 SQuAD v2.0 dev
  paragraphs, 120 BIG-bench arithmetic spread over its 20 tasks, 100 gsm_symbolic word problems, 80 chat: the
  split's MT-bench conversations' first turns, topped up with AlpacaEval instructions), every item from one split.
- ``ood-hotpotqa``: 200 HotpotQA multi-hop questions over their own paragraphs (the ten, two supporting and eight
  distracting, that come with each question). Test only: nothing is tuned on it.
- ``routing-dev`` / ``routing-test``: labelled questions for the router, disjoint from the mixed suite of their
  split. ``routing-test`` is the held-out routing figure: AlpacaEval instructions (human-written, not MT-bench),
  HotpotQA questions, BIG-bench arithmetic and gsm_symbolic problems of the test split.
- ``docs-dev`` / ``docs-test``: questions about public documents of the kinds people keep, in their own formats
  (eval/documents.py), some of them not answered there; split by document.
- ``facts-dev``, ``unanswerable-dev``, ``unanswerable-near-dev``, ``unanswerable-test``: for fitting and measuring the
  escalation and answerability decisions.
- the raw datasets (``squad-v2-dev``, ``hotpotqa``, ``bigbench-arithmetic``, ``gsm-symbolic``, ``mt-bench``,
  ``alpaca-eval``), for exploration, not for figures.
All tuning uses dev suites; reported figures come from test and out-of-domain suites (docs/eval/PROTOCOL.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from common.sources import DatasetStore
from eval.datasets import (
    GSM_SEED,
    EvalItem,
    Kind,
    alpaca_eval_items,
    bigbench_arithmetic_items,
    gsm_symbolic_items,
    hotpotqa_items,
    mt_bench_items,
    squad_items,
)
from eval.splits import Split, split_of, squad_group
from retrieval.documents import Document
from retrieval.squad import Paragraph, load_hotpotqa_dev, load_squad_dev

MIXED_SEED = 20261123
ROUTING_SEED = 20261124
OOD_SEED = 20261206
MIXED_COMPOSITION: dict[Kind, int] = {"fact": 200, "arithmetic": 120, "word_problem": 100, "chat": 80}
OOD_SIZE = 200
ESCALATION_SEED = 20261202
CHAT_SEED = 7
CHAT_EXTRA = 60
ESCALATION_FACTS = 600
UNANSWERABLE_SIZE = 200
SQUAD_CORPUS = "squad-v2-dev"


@dataclass(frozen=True)
class Suite:
    """A suite's items, the split they come from (``both`` for raw datasets), and its own corpus if it has one."""

    name: str
    items: list[EvalItem]
    split: str
    corpus: tuple[Paragraph, ...] | None = None
    corpus_name: str | None = None
    answerable: bool = True
    documents: tuple[Document, ...] | None = None
    """A suite of people's documents indexes these (converted as uploads are) instead of paragraphs."""


def _sample(generator: random.Random, items: list[EvalItem], count: int) -> list[EvalItem]:
    return generator.sample(items, min(count, len(items)))


def mixed_items(store: DatasetStore, split: Split, *, progress: bool = True,
                composition: dict[Kind, int] | None = None) -> list[EvalItem]:
    """``mixed-<split>``: facts, arithmetic, word problems and chat of one split, stratified and seeded."""
    counts = composition or MIXED_COMPOSITION
    generator = random.Random(MIXED_SEED)  # noqa: S311 - a reproducible sample, not a secret
    suite: list[EvalItem] = []
    facts = [item for item in squad_items(store, progress=progress) if item.split == split]
    suite += _sample(generator, facts, counts["fact"])
    by_task: dict[str, list[EvalItem]] = {}
    for item in bigbench_arithmetic_items(store, progress=progress):
        if item.split == split:
            by_task.setdefault(item.source, []).append(item)
    per_task, extra = divmod(counts["arithmetic"], len(by_task))
    for position, task in enumerate(sorted(by_task)):
        suite += _sample(generator, by_task[task], per_task + (1 if position < extra else 0))
    suite += gsm_symbolic_items(counts["word_problem"], seed=GSM_SEED, split=split)
    chat = [item for item in mt_bench_items(store, progress=progress) if item.split == split]
    chat = chat[: counts["chat"]]
    instructions = [item for item in alpaca_eval_items(store, progress=progress) if item.split == split]
    suite += chat + _sample(generator, instructions, counts["chat"] - len(chat))
    return suite


def chat_dev_items(store: DatasetStore, *, progress: bool = True) -> list[EvalItem]:
    """``chat-dev``: mixed-dev's 80 chat prompts and 60 more seeded AlpacaEval dev instructions, the prompts whose
    small-model answers are labelled by hand (``eval/data/chat_labels.jsonl``) to fit the chat confidence on."""
    chat = [item for item in mixed_items(store, "dev", progress=progress) if item.kind == "chat"]
    taken = {item.id for item in chat}
    more = [item for item in alpaca_eval_items(store, progress=False) if item.split == "dev" and item.id not in taken]
    random.Random(CHAT_SEED).shuffle(more)  # noqa: S311 - a reproducible sample, not a secret
    return chat + more[:CHAT_EXTRA]


def squad_corpus(store: DatasetStore, *, progress: bool = True) -> tuple[Paragraph, ...]:
    """The 1,204 SQuAD v2.0 dev paragraphs of both splits: the corpus of every SQuAD suite (a test question's
    paragraph is there, as a user's document would be; what is held out is the question)."""
    return load_squad_dev(store, progress=progress).paragraphs


def ood_items(store: DatasetStore, *, progress: bool = True, size: int = OOD_SIZE) -> list[EvalItem]:
    """``size`` seeded HotpotQA questions (the reserved quarter never among them)."""
    generator = random.Random(f"{OOD_SEED}:hotpotqa")  # noqa: S311 - a reproducible sample, not a secret
    return _sample(generator, hotpotqa_items(store, progress=progress), size)


def ood_suite(store: DatasetStore, *, progress: bool = True, size: int = OOD_SIZE) -> Suite:
    """``ood-hotpotqa``: the sampled questions over the ten paragraphs each of them comes with."""
    items = ood_items(store, progress=progress, size=size)
    data = load_hotpotqa_dev(store, progress=False)
    wanted = {item.id.removeprefix("hotpotqa:") for item in items}
    context = {doc_id for question in data.questions if question.id in wanted for doc_id in question.context_ids}
    corpus = tuple(paragraph for paragraph in data.paragraphs if paragraph.doc_id in context)
    return Suite("ood-hotpotqa", items, "test", corpus, "hotpotqa-ood")


def escalation_fact_items(store: DatasetStore, *, progress: bool = True,
                          size: int = ESCALATION_FACTS) -> list[EvalItem]:
    """``facts-dev``: more dev-split SQuAD questions to fit the escalation models on, disjoint from ``mixed-dev`` and
    ``routing-dev``."""
    taken = {item.id for item in routing_items(store, "dev", progress=progress)}
    taken |= {item.id for item in mixed_items(store, "dev", progress=False)}
    generator = random.Random(f"{ESCALATION_SEED}:facts")  # noqa: S311 - a reproducible sample, not a secret
    fresh = [item for item in squad_items(store, progress=False) if item.split == "dev" and item.id not in taken]
    return _sample(generator, fresh, size)


def unanswerable_dev_suite(store: DatasetStore, *, progress: bool = True, size: int = UNANSWERABLE_SIZE) -> Suite:
    """``unanswerable-dev``: dev-split SQuAD questions asked over the test-split articles' paragraphs only, so
    their answers are in no document (the corpus holds other Wikipedia articles)."""
    corpus = tuple(paragraph for paragraph in squad_corpus(store, progress=progress)
                   if split_of(squad_group(paragraph.title)) == "test")
    taken = {item.id for item in escalation_fact_items(store, progress=False)}
    generator = random.Random(f"{ESCALATION_SEED}:unanswerable")  # noqa: S311 - a reproducible sample
    fresh = [item for item in squad_items(store, progress=False) if item.split == "dev" and item.id not in taken]
    return Suite("unanswerable-dev", _sample(generator, fresh, size), "dev", corpus, "squad-test-articles",
                 answerable=False)


def unanswerable_near_dev_suite(store: DatasetStore, *, progress: bool = True,
                                size: int = UNANSWERABLE_SIZE) -> Suite:
    """``unanswerable-near-dev``: SQuAD v2.0 questions of dev articles written so that their own paragraph does not
    answer them, over the whole SQuAD corpus: the near misses a user's documents meet (the topic is there, the
    answer is not), as the first half of ``unanswerable-test`` is on test articles."""
    generator = random.Random(f"{ESCALATION_SEED}:unanswerable-near-dev")  # noqa: S311 - a reproducible sample
    impossible = [item for item in squad_items(store, progress=progress, answerable=False) if item.split == "dev"]
    return Suite("unanswerable-near-dev", _sample(generator, impossible, size), "dev",
                 squad_corpus(store, progress=False), SQUAD_CORPUS, answerable=False)


def unanswerable_test_suite(store: DatasetStore, *, progress: bool = True, size: int = UNANSWERABLE_SIZE) -> Suite:
    """``unanswerable-test``, over the SQuAD corpus: half SQuAD v2.0 questions of test articles written so that
    their paragraph does not answer them, half HotpotQA questions (not in ``ood-hotpotqa``) about other topics."""
    generator = random.Random(f"{ESCALATION_SEED}:unanswerable-test")  # noqa: S311 - a reproducible sample
    impossible = [item for item in squad_items(store, progress=progress, answerable=False) if item.split == "test"]
    taken = {item.id for item in ood_items(store, progress=False)}
    other = [item for item in hotpotqa_items(store, progress=False) if item.id not in taken]
    items = _sample(generator, impossible, size - size // 2) + _sample(generator, other, size // 2)
    return Suite("unanswerable-test", items, "test", squad_corpus(store, progress=False), SQUAD_CORPUS,
                 answerable=False)


def routing_items(store: DatasetStore, split: Split, *, progress: bool = True) -> list[EvalItem]:
    """Labelled routing questions of one split, disjoint from ``mixed-<split>``.

    dev: 300 SQuAD questions, 100 arithmetic, 100 word problems, the split's AlpacaEval instructions, and the
    MT-bench follow-up turns (routed in their thread). test: the split's AlpacaEval instructions (at least 200),
    100 HotpotQA questions (none of ``ood-hotpotqa``), 100 arithmetic and 100 word problems.
    """
    mixed = mixed_items(store, split, progress=progress)
    taken = {item.id for item in mixed} | {item.question for item in mixed}
    generator = random.Random(f"{ROUTING_SEED}:{split}")  # noqa: S311 - a reproducible sample, not a secret

    def fresh(items: list[EvalItem]) -> list[EvalItem]:
        return [item for item in items if item.split == split and item.id not in taken and item.question not in taken]

    arithmetic = _sample(generator, fresh(bigbench_arithmetic_items(store, progress=progress)), 100)
    problems = fresh(gsm_symbolic_items(300, seed=GSM_SEED + 1, split=split))[:100]
    chat = fresh(alpaca_eval_items(store, progress=progress))
    if split == "dev":
        facts = _sample(generator, fresh(squad_items(store, progress=progress)), 300)
        follow_ups = [item for item in mt_bench_items(store, progress=progress, turn=2) if item.split == split]
        return facts + arithmetic + problems + chat + follow_ups
    taken |= {item.id for item in ood_items(store, progress=False)}
    questions = _sample(generator, fresh(hotpotqa_items(store, progress=progress)), 100)
    return questions + arithmetic + problems + chat


def suite_loaders(store: DatasetStore, *, progress: bool = True) -> dict[str, Callable[[], Suite]]:
    """Every named suite, loaded on demand."""

    def mixed(split: Split) -> Suite:
        return Suite(f"mixed-{split}", mixed_items(store, split, progress=progress), split,
                     squad_corpus(store, progress=False), SQUAD_CORPUS)

    def facts_dev() -> Suite:
        return Suite("facts-dev", escalation_fact_items(store, progress=progress), "dev",
                     squad_corpus(store, progress=False), SQUAD_CORPUS)

    def routing(split: Split) -> Suite:
        return Suite(f"routing-{split}", routing_items(store, split, progress=progress), split,
                     squad_corpus(store, progress=False), SQUAD_CORPUS)

    def documents(split: Split) -> Suite:
        from eval.documents import documents_items, suite_documents

        return Suite(f"docs-{split}", documents_items(split), split, corpus_name=f"docs-{split}",
                     documents=suite_documents(store, split, progress=progress))

    def word_problems(split: Split) -> Suite:
        return Suite(f"word-problems-{split}",
                     gsm_symbolic_items(MIXED_COMPOSITION["word_problem"], seed=GSM_SEED, split=split), split)

    return {
        "docs-dev": lambda: documents("dev"),
        "docs-test": lambda: documents("test"),
        "mixed-dev": lambda: mixed("dev"),
        "mixed-test": lambda: mixed("test"),
        "ood-hotpotqa": lambda: ood_suite(store, progress=progress),
        "word-problems-dev": lambda: word_problems("dev"),
        "word-problems-test": lambda: word_problems("test"),
        "routing-dev": lambda: routing("dev"),
        "routing-test": lambda: routing("test"),
        "facts-dev": facts_dev,
        "chat-dev": lambda: Suite("chat-dev", chat_dev_items(store, progress=progress), "dev",
                                  squad_corpus(store, progress=False), SQUAD_CORPUS),
        "unanswerable-dev": lambda: unanswerable_dev_suite(store, progress=progress),
        "unanswerable-near-dev": lambda: unanswerable_near_dev_suite(store, progress=progress),
        "unanswerable-test": lambda: unanswerable_test_suite(store, progress=progress),
        "squad-v2-dev": lambda: Suite("squad-v2-dev", squad_items(store, progress=progress), "both",
                                      squad_corpus(store, progress=False), SQUAD_CORPUS),
        "hotpotqa": lambda: Suite("hotpotqa", hotpotqa_items(store, progress=progress), "test"),
        "bigbench-arithmetic": lambda: Suite("bigbench-arithmetic",
                                             bigbench_arithmetic_items(store, progress=progress), "both"),
        "gsm-symbolic": lambda: Suite("gsm-symbolic", gsm_symbolic_items(100, seed=GSM_SEED), "both"),
        "mt-bench": lambda: Suite("mt-bench", mt_bench_items(store, progress=progress), "both"),
        "alpaca-eval": lambda: Suite("alpaca-eval", alpaca_eval_items(store, progress=progress), "both"),
    }


def available_suites() -> dict[str, str]:
    """Suite names accepted by the eval CLI, with a one-line description."""
    return {
        "docs-dev": ("131 questions about 13 documents people keep (html, pdf, csv, xlsx, md, txt, docx), 28 of them "
                     "not answered there (tune on this)"),
        "docs-test": ("49 questions about 5 other documents (html, pdf, xlsx, md, docx), 12 not answered there "
                      "(report on this)"),
        "mixed-dev": "500 dev items: 200 SQuAD v2.0 facts, 120 arithmetic, 100 word problems, 80 chat (tune on this)",
        "mixed-test": "500 test items, the same mix (report on this)",
        "ood-hotpotqa": "200 HotpotQA multi-hop questions over the ten paragraphs each comes with (test)",
        "word-problems-dev": "mixed-dev's 100 word problems alone (tune the word-problem path on this)",
        "word-problems-test": "mixed-test's 100 word problems alone (report on this)",
        "facts-dev": "600 more dev SQuAD questions to fit the escalation models on (disjoint from the dev suites)",
        "chat-dev": ("mixed-dev's 80 chat prompts + 60 more AlpacaEval dev instructions, their small-model answers "
                     "labelled by hand to fit the chat confidence on"),
        "unanswerable-dev": "200 dev SQuAD questions over the test articles' paragraphs only: not in the documents",
        "unanswerable-near-dev": ("200 SQuAD v2.0 questions of dev articles their own paragraph does not answer, over "
                                  "the SQuAD corpus: near misses (tune on this)"),
        "unanswerable-test": "100 SQuAD v2.0 unanswerable + 100 HotpotQA questions over the SQuAD corpus (test)",
        "routing-dev": "labelled routing questions of the dev split, MT-bench follow-ups in their threads",
        "routing-test": "held-out routing questions: AlpacaEval, HotpotQA, arithmetic, word problems (test)",
        "squad-v2-dev": "5,928 answerable SQuAD v2.0 dev questions over 1,204 Wikipedia paragraphs, both splits",
        "hotpotqa": "HotpotQA dev questions less the reserved quarter (test only; no corpus: use ood-hotpotqa)",
        "bigbench-arithmetic": "15,023 plain arithmetic questions, 1-5 digits, + - * /, both splits",
        "gsm-symbolic": "100 seeded GSM8K-style word problems from reasoning-gym, both splits",
        "mt-bench": "80 open-ended chat questions, both splits (routing and cost only)",
        "alpaca-eval": "805 human-written instructions, both splits (routing and cost only)",
        "PATH.jsonl": "your own file: question, answers, optional kind and id per line",
    }
