"""The evaluation datasets from their pinned registry packages, and what they mean for routing."""

from __future__ import annotations

import hashlib
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from assistant.settings import Settings
from common.sources import DatasetError
from eval.datasets import (
    EvalItem,
    alpaca_eval_items,
    bigbench_arithmetic_items,
    gsm_symbolic_items,
    mt_bench_items,
    squad_items,
    squad_shift_items,
    thread_first_turns,
)
from eval.leakage import find_leaks, source_files
from eval.splits import split_of, squad_group
from eval.suites import mixed_items, shift_suite, suite_loaders
from retrieval.squad import SHIFT_NAMES, load_squad_shift
from tools import calculate, extract_expression

# sha256 of each suite's item ids (newline-joined, first 16 hex digits), committed when the suites were defined.
SUITE_DIGESTS: dict[str, str] = {
    "mixed-dev": "d6855e6ecbe8dfff",
    "mixed-test": "6ccc8e838e895946",
    "routing-dev": "8ffe0000d716d973",
    "routing-test": "f1c882f97bec72d6",
    "shift-nyt": "63587f9a4aee6f13",
    "shift-reddit": "1c79964a94876cbf",
    "shift-amazon": "67d2bb94ee7ba8d5",
    "facts-dev": "d091ef2978028170",
    "unanswerable-dev": "4961646abf801a33",
    "unanswerable-test": "82ca5c81bc32513d",
}


def test_bigbench_arithmetic_is_plain_arithmetic_the_calculator_answers(real_settings: Settings) -> None:
    items = bigbench_arithmetic_items(real_settings.cache_dir, progress=False)
    assert len({item.source for item in items}) == 20
    assert any(item.question == "What is 697 times 205?" and item.answers == ("142885",) for item in items)
    for item in items[::97]:
        expression = extract_expression(item.question)
        assert expression is not None, item.question
        assert Fraction(calculate(expression).exact) in {Fraction(answer) for answer in item.answers}, item


def test_word_problems_and_chat_are_not_plain_arithmetic(real_settings: Settings) -> None:
    problems = gsm_symbolic_items(30)
    assert problems == gsm_symbolic_items(30), "the generator is seeded"
    assert all(item.answers and item.answers[0].lstrip("-").replace(".", "").isdigit() for item in problems)
    chat = mt_bench_items(real_settings.cache_dir, progress=False)
    assert len(chat) == 80
    for item in problems + chat:
        assert extract_expression(item.question) is None, item.question


SPLIT_SUITES = ("mixed-dev", "mixed-test", "routing-dev", "routing-test", "shift-nyt", "shift-reddit", "shift-amazon",
                "facts-dev", "unanswerable-dev", "unanswerable-test")


def _ids_digest(items: list[EvalItem]) -> str:
    return hashlib.sha256("\n".join(item.id for item in items).encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def suites(real_settings: Settings) -> dict[str, list[EvalItem]]:
    loaders = suite_loaders(real_settings.cache_dir, progress=False)
    return {name: loaders[name]().items for name in SPLIT_SUITES}


@pytest.mark.parametrize("split", ["dev", "test"])
def test_the_mixed_suites_are_stratified_and_reproducible(real_settings: Settings,
                                                          suites: dict[str, list[EvalItem]], split: str) -> None:
    suite = suites[f"mixed-{split}"]
    assert len(suite) >= 500
    assert Counter(item.kind for item in suite) == {"fact": 200, "arithmetic": 120, "word_problem": 100, "chat": 80}
    assert len({item.id for item in suite}) == len(suite)
    assert all(item.split == split for item in suite)
    assert all(item.answers for item in suite if item.kind != "chat")
    assert [item.id for item in mixed_items(real_settings.cache_dir, split, progress=False)] == [
        item.id for item in suite]


def test_splits_are_stable_across_runs_and_machines(suites: dict[str, list[EvalItem]]) -> None:
    # Committed digests of every suite's item ids: a change to the split rule, a seed or a loader shows up here.
    assert {name: _ids_digest(items) for name, items in suites.items()} == SUITE_DIGESTS


def test_no_group_straddles_the_split(real_settings: Settings) -> None:
    cache = real_settings.cache_dir
    items = (squad_items(cache, progress=False) + bigbench_arithmetic_items(cache, progress=False)
             + mt_bench_items(cache, progress=False) + mt_bench_items(cache, progress=False, turn=2)
             + alpaca_eval_items(cache, progress=False) + gsm_symbolic_items(400))
    splits_by_group: dict[str, set[str]] = {}
    for item in items:
        assert item.group, item.id
        splits_by_group.setdefault(item.group, set()).add(item.split)
    assert all(len(found) == 1 for found in splits_by_group.values())
    articles = {group for group in splits_by_group if group.startswith("squad-article:")}
    assert len(articles) == 48 and {split for group in articles for split in splits_by_group[group]} == {"dev", "test"}
    templates = {group for group in splits_by_group if group.startswith("gsm-template:")}
    assert len(templates) > 40


def test_dev_and_test_suites_share_no_item_or_question(suites: dict[str, list[EvalItem]]) -> None:
    dev = suites["mixed-dev"] + suites["routing-dev"] + suites["facts-dev"] + suites["unanswerable-dev"]
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
    assert sum(count for source, count in sources.items() if source.startswith("squadshifts-")) == 100
    assert sources["bigbench-arithmetic"] == 100 and sources["reasoning-gym"] == 100


def test_the_unanswerable_suites_ask_about_documents_their_corpus_does_not_hold(real_settings: Settings) -> None:
    loaders = suite_loaders(real_settings.cache_dir, progress=False)
    dev = loaders["unanswerable-dev"]()
    assert dev.split == "dev" and not dev.answerable and dev.corpus is not None
    held = {paragraph.doc_id for paragraph in dev.corpus}
    titles = {paragraph.title for paragraph in dev.corpus}
    assert len(held) == 950 and not any(item.doc_id in held for item in dev.items)
    assert all(item.split == "dev" for item in dev.items) and all(split_of(squad_group(title)) == "test"
                                                                  for title in titles)
    test = loaders["unanswerable-test"]()
    assert test.split == "test" and not test.answerable and test.corpus is None  # the SQuAD knowledge base
    assert Counter(item.source for item in test.items) == {"squadshifts-nyt": 68, "squadshifts-reddit": 66,
                                                           "squadshifts-amazon": 66}


def test_shift_suites_bring_their_own_corpus(real_settings: Settings) -> None:
    suite = shift_suite(real_settings.cache_dir, "nyt", progress=False)
    assert suite.split == "test" and len(suite.items) == 200 and suite.corpus is not None
    paragraphs = {paragraph.doc_id for paragraph in suite.corpus}
    assert len(paragraphs) == 2017 and all(item.doc_id in paragraphs for item in suite.items)
    assert all(item.doc_id.startswith("squadshifts-nyt/") for item in suite.items)


def test_new_wiki_is_never_loadable(real_settings: Settings) -> None:
    with pytest.raises(DatasetError, match="new_wiki"):
        load_squad_shift(real_settings.cache_dir, "new_wiki", progress=False)
    assert not any("new_wiki" in path.name for path in real_settings.cache_dir.rglob("*.json"))


def test_every_dev_follow_up_has_the_first_turn_of_its_conversation(real_settings: Settings,
                                                                     suites: dict[str, list[EvalItem]]) -> None:
    first_turns = thread_first_turns(real_settings.cache_dir, progress=False)
    openings = {item.id: item.question for item in mt_bench_items(real_settings.cache_dir, progress=False)}
    follow_ups = [item for item in suites["routing-dev"] if item.source.startswith("mt-bench/")]
    assert follow_ups and all(item.id in first_turns for item in follow_ups)
    for item in follow_ups:
        conversation = item.id.rsplit(":", 1)[0]
        assert first_turns[item.id] == openings[conversation] != item.question


def test_no_source_file_quotes_or_names_a_test_item(real_settings: Settings,
                                                    suites: dict[str, list[EvalItem]]) -> None:
    cache = real_settings.cache_dir
    test_items = [item for name, items in suites.items() if not name.endswith("-dev") for item in items]
    test_items += [item for item in squad_items(cache, progress=False) + alpaca_eval_items(cache, progress=False)
                   + mt_bench_items(cache, progress=False) + mt_bench_items(cache, progress=False, turn=2)
                   if item.split == "test"]
    test_items += [item for name in SHIFT_NAMES for item in squad_shift_items(cache, name, progress=False)]
    root = Path(__file__).resolve().parents[2]
    files = source_files([root / name for name in ("assistant", "models", "retrieval", "tools", "eval", "bench")])
    assert len(files) > 40
    assert [str(leak) for leak in find_leaks(files, test_items)] == []
