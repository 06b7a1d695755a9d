"""The evaluation datasets from their pinned registry packages, and what they mean for routing."""

from __future__ import annotations

import hashlib
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from assistant.core.settings import Settings
from common.sources import DatasetStore
from eval.datasets import (
    EvalItem,
    alpaca_eval_items,
    bigbench_arithmetic_items,
    gsm_symbolic_items,
    hotpotqa_items,
    mt_bench_items,
    squad_items,
    thread_first_turns,
)
from eval.leakage import find_leaks, source_files
from eval.splits import hotpotqa_group, reserved, split_of, squad_group
from eval.suites import mixed_items, ood_suite, suite_loaders
from retrieval.squad import load_hotpotqa_dev
from tools import calculate, extract_expression

# sha256 of each suite's item ids (newline-joined, first 16 hex digits), committed when the suites were defined
# (2026-12-06, on the sources that replaced the vanished bigbench==1.0.0 archive).
SUITE_DIGESTS: dict[str, str] = {
    "mixed-dev": "0db92d7e83fb058d",
    "mixed-test": "88d11d9884e54b22",
    "routing-dev": "6c65c0306b06ef39",
    "routing-test": "5b70aa710181ccb8",
    "ood-hotpotqa": "85ce4a75bea78b13",
    "facts-dev": "da6463fe6a09fb55",
    "unanswerable-dev": "7434d12a419cca5d",
    "unanswerable-test": "0377f4a2d19d6bee",
    "unanswerable-near-dev": "899b6fd625de5cd2",  # 2026-12-07 (tenth session): near misses to fit answerability on
    "docs-dev": "3d38466711a465c1",  # 2026-12-06 (seventh session): seven dev documents added
    "docs-test": "490185433f9c63be",
}


@pytest.fixture(scope="module")
def store(real_settings: Settings) -> DatasetStore:
    return real_settings.dataset_store()


def test_bigbench_arithmetic_is_plain_arithmetic_the_calculator_answers(store: DatasetStore) -> None:
    items = bigbench_arithmetic_items(store, progress=False)
    assert len({item.source for item in items}) == 20
    assert any(item.question == "What is 697 times 205?" and item.answers == ("142885",) for item in items)
    for item in items[::97]:
        expression = extract_expression(item.question)
        assert expression is not None, item.question
        assert Fraction(calculate(expression).exact) in {Fraction(answer) for answer in item.answers}, item


def test_word_problems_and_chat_are_not_plain_arithmetic(store: DatasetStore) -> None:
    problems = gsm_symbolic_items(30)
    assert problems == gsm_symbolic_items(30), "the generator is seeded"
    assert all(item.answers and item.answers[0].lstrip("-").replace(".", "").isdigit() for item in problems)
    chat = mt_bench_items(store, progress=False)
    assert len(chat) == 80
    for item in problems + chat:
        assert extract_expression(item.question) is None, item.question


SPLIT_SUITES = ("mixed-dev", "mixed-test", "routing-dev", "routing-test", "ood-hotpotqa", "facts-dev",
                "unanswerable-dev", "unanswerable-test", "unanswerable-near-dev", "docs-dev", "docs-test")


def _ids_digest(items: list[EvalItem]) -> str:
    return hashlib.sha256("\n".join(item.id for item in items).encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def suites(store: DatasetStore) -> dict[str, list[EvalItem]]:
    loaders = suite_loaders(store, progress=False)
    return {name: loaders[name]().items for name in SPLIT_SUITES}


@pytest.mark.parametrize("split", ["dev", "test"])
def test_the_mixed_suites_are_stratified_and_reproducible(store: DatasetStore,
                                                          suites: dict[str, list[EvalItem]], split: str) -> None:
    suite = suites[f"mixed-{split}"]
    assert len(suite) >= 500
    assert Counter(item.kind for item in suite) == {"fact": 200, "arithmetic": 120, "word_problem": 100, "chat": 80}
    assert len({item.id for item in suite}) == len(suite)
    assert all(item.split == split for item in suite)
    assert all(item.answers for item in suite if item.kind != "chat")
    assert [item.id for item in mixed_items(store, split, progress=False)] == [
        item.id for item in suite]


def test_splits_are_stable_across_runs_and_machines(suites: dict[str, list[EvalItem]]) -> None:
    # Committed digests of every suite's item ids: a change to the split rule, a seed or a loader shows up here.
    assert {name: _ids_digest(items) for name, items in suites.items()} == SUITE_DIGESTS


def test_no_group_straddles_the_split(store: DatasetStore) -> None:
    items = (squad_items(store, progress=False) + squad_items(store, progress=False, answerable=False)
             + bigbench_arithmetic_items(store, progress=False)
             + mt_bench_items(store, progress=False) + mt_bench_items(store, progress=False, turn=2)
             + alpaca_eval_items(store, progress=False) + gsm_symbolic_items(400))
    splits_by_group: dict[str, set[str]] = {}
    for item in items:
        assert item.group, item.id
        splits_by_group.setdefault(item.group, set()).add(item.split)
    assert all(len(found) == 1 for found in splits_by_group.values())
    articles = {group for group in splits_by_group if group.startswith("squad-article:")}
    assert len(articles) == 35 and {split for group in articles for split in splits_by_group[group]} == {"dev", "test"}
    templates = {group for group in splits_by_group if group.startswith("gsm-template:")}
    assert len(templates) > 40


def test_dev_and_test_suites_share_no_item_or_question(suites: dict[str, list[EvalItem]]) -> None:
    dev = (suites["mixed-dev"] + suites["routing-dev"] + suites["facts-dev"] + suites["unanswerable-dev"]
           + suites["unanswerable-near-dev"])
    test = [item for name, items in suites.items() if not name.endswith("-dev") for item in items]
    facts, unanswerable = ({item.id for item in suites[name]} for name in ("facts-dev", "unanswerable-dev"))
    assert len(facts) == 600 and not facts & {item.id for item in suites["mixed-dev"] + suites["routing-dev"]}
    assert len(unanswerable) == 200 and not facts & unanswerable
    assert not {item.id for item in dev} & {item.id for item in test}
    assert not {item.question for item in dev if item.kind != "arithmetic"} & {item.question for item in test}
    assert not {item.id for item in suites["mixed-test"]} & {item.id for item in suites["routing-test"]}


def test_the_held_out_routing_set_has_other_human_written_prompts(suites: dict[str, list[EvalItem]]) -> None:
    held_out = suites["routing-test"]
    assert len({item.id for item in held_out}) == len(held_out)
    sources = Counter(item.source.split("/")[0] for item in held_out)
    assert sources["alpaca-eval"] >= 200 and "mt-bench" not in sources
    assert sources["hotpotqa"] == 100
    assert sources["bigbench-arithmetic"] == 100 and sources["reasoning-gym"] == 100


def test_the_unanswerable_suites_ask_about_documents_their_corpus_does_not_hold(store: DatasetStore) -> None:
    loaders = suite_loaders(store, progress=False)
    dev = loaders["unanswerable-dev"]()
    assert dev.split == "dev" and not dev.answerable and dev.corpus is not None
    held = {paragraph.doc_id for paragraph in dev.corpus}
    titles = {paragraph.title for paragraph in dev.corpus}
    assert len(held) == 525 and not any(item.doc_id in held for item in dev.items)
    assert all(item.split == "dev" for item in dev.items) and all(split_of(squad_group(title)) == "test"
                                                                  for title in titles)
    test = loaders["unanswerable-test"]()
    assert test.split == "test" and not test.answerable and test.corpus is not None and len(test.corpus) == 1204
    assert Counter(item.source.split("/")[0] for item in test.items) == {"squad-v2-dev": 100, "hotpotqa": 100}
    assert all(item.split == "test" and not item.answers for item in test.items if item.source == "squad-v2-dev")
    near = loaders["unanswerable-near-dev"]()  # the same kind as test's first half, on dev articles
    assert near.split == "dev" and not near.answerable and near.corpus is not None and len(near.corpus) == 1204
    assert len(near.items) == 200 and all(item.split == "dev" and item.source == "squad-v2-dev" and not item.answers
                                          for item in near.items)


def test_the_out_of_domain_suite_brings_its_own_paragraphs(store: DatasetStore) -> None:
    suite = ood_suite(store, progress=False)
    assert suite.split == "test" and len(suite.items) == 200 and suite.corpus is not None
    paragraphs = {paragraph.doc_id for paragraph in suite.corpus}
    assert len(paragraphs) == 1978 and all(item.doc_id in paragraphs for item in suite.items)
    assert all(item.doc_id.startswith("hotpotqa/") and item.answers for item in suite.items)


def test_the_reserved_quarter_of_hotpotqa_is_never_an_item(store: DatasetStore,
                                                          suites: dict[str, list[EvalItem]]) -> None:
    everything = load_hotpotqa_dev(store, progress=False).questions
    held_back = {question.id for question in everything if reserved(hotpotqa_group(question.id))}
    assert 0.2 < len(held_back) / len(everything) < 0.3
    items = hotpotqa_items(store, progress=False)
    assert all(item.split == "test" for item in items), "test only: nothing is tuned on it"
    loaded = {item.id.removeprefix("hotpotqa:") for item in items}
    assert len(loaded) + len(held_back) == len(everything) and not loaded & held_back
    in_suites = {item.id.removeprefix("hotpotqa:") for items in suites.values() for item in items}
    assert not in_suites & held_back


def test_every_dev_follow_up_has_the_first_turn_of_its_conversation(store: DatasetStore,
                                                                     suites: dict[str, list[EvalItem]]) -> None:
    first_turns = thread_first_turns(store, progress=False)
    openings = {item.id: item.question for item in mt_bench_items(store, progress=False)}
    follow_ups = [item for item in suites["routing-dev"] if item.source.startswith("mt-bench/")]
    assert follow_ups and all(item.id in first_turns for item in follow_ups)
    for item in follow_ups:
        conversation = item.id.rsplit(":", 1)[0]
        assert first_turns[item.id] == openings[conversation] != item.question


def test_the_documents_suite_comes_from_its_pinned_packages_and_its_answers_are_in_its_documents(
        store: DatasetStore, suites: dict[str, list[EvalItem]]) -> None:
    from eval.documents import DOCUMENTS, questions, suite_documents
    from retrieval.markdown import plain_text

    texts = {document.doc_id: document for split in ("dev", "test") for document in suite_documents(store, split)}
    assert set(texts) == {document.file_name for document in DOCUMENTS}
    formats = {split: {document.format for document in DOCUMENTS if document.split == split}
               for split in ("dev", "test")}
    assert formats["dev"] >= {"html", "pdf", "md", "docx"} and formats["test"] >= {"html", "pdf", "md", "docx"}
    for document in DOCUMENTS:
        read = texts[document.file_name]
        # substantial (the smallest is a 51-row table), and markdown unless read from a PDF or plain text
        assert len(read.text) > 1500 and read.markdown == (document.format != "pdf" and document.format != "txt")
    by_key = {document.key: document.file_name for document in DOCUMENTS}
    for question in questions():  # every reference answer is written in its document, as it stands there
        text = texts[by_key[question.doc]].text
        written = " ".join(text.lower().split()), " ".join(plain_text(text).lower().split())
        assert not question.answers or any(" ".join(answer.lower().split()) in version
                                           for answer in question.answers for version in written), question
    kinds = Counter(bool(item.answers) for split in ("docs-dev", "docs-test") for item in suites[split])
    assert kinds == {True: 140, False: 40}
    assert all(item.split == "dev" for item in suites["docs-dev"]) and all(
        item.split == "test" for item in suites["docs-test"])


def test_no_source_file_quotes_or_names_a_test_item(store: DatasetStore,
                                                    suites: dict[str, list[EvalItem]]) -> None:
    test_items = [item for name, items in suites.items() if not name.endswith("-dev") for item in items]
    test_items += [item for item in squad_items(store, progress=False)
                   + squad_items(store, progress=False, answerable=False) + alpaca_eval_items(store, progress=False)
                   + mt_bench_items(store, progress=False) + mt_bench_items(store, progress=False, turn=2)
                   if item.split == "test"]
    test_items += hotpotqa_items(store, progress=False)
    root = Path(__file__).resolve().parents[2]
    files = source_files([root / name for name in ("assistant", "models", "retrieval", "tools", "eval", "bench")])
    assert len(files) > 40
    assert [str(leak) for leak in find_leaks(files, test_items)] == []


def test_a_typeset_pdf_reads_with_its_spaces_and_without_its_running_headers(store: DatasetStore) -> None:
    """The bash manual (groff): pypdf ran words together ("Ifunset", "savedwhen") and kept every page's header."""
    from eval.documents import DOCUMENTS, document_paths
    from retrieval.documents import read_file

    manual = next(document for document in DOCUMENTS if document.file_name == "bash.pdf")
    text = read_file(document_paths(store, (manual,), progress=False)[manual.key], "bash.pdf")[0].text
    assert "is ~/.bash_history. If unset, the command history is not saved when a shell exits." in " ".join(
        text.split())
    assert "\ufb01" not in text and "the history file is truncated" in text  # the "fi" ligature spelled out
    assert text.count("General Commands Manual") <= 1 < text.count("HISTFILE")
