"""Cached prompt heads without a model: the evaluated-token rule, and which saved state is restored or replaced."""

from __future__ import annotations

import pytest

from models.base import Usage
from models.prompt_cache import MIN_GAIN_TOKENS, PromptStates, common_prefix, evaluated_prompt_tokens

FACT = list(range(100, 160))    # one kind of prompt: a 60-token head ...
CHAT = list(range(500, 530))    # ... another kind


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0 and common_prefix([5], [6]) == 0


@pytest.mark.parametrize(("context", "prompt", "live", "evaluated"), [
    ([], [*FACT, 1, 2], True, 62),                      # empty context: everything
    ([*FACT, 7, 8, 9], [*FACT, 1, 2], True, 2),         # the head is reused, the rest evaluated
    ([*CHAT, 3], [*FACT, 1, 2], True, 62),              # another kind in the context: everything again
    ([*FACT, 1, 2, 5], [*FACT, 1, 2], True, 1),         # the prompt held entirely: its last token re-evaluated
    ([*FACT, 1, 2], [*FACT, 1, 2], True, 0),            # exactly the prompt, live logits: nothing
    ([*FACT, 1, 2], [*FACT, 1, 2], False, 1),           # exactly the prompt from a restored state: one token
])
def test_evaluated_prompt_tokens_follow_llama_cpp_python(context: list[int], prompt: list[int], live: bool,
                                                         evaluated: int) -> None:
    assert evaluated_prompt_tokens(context, prompt, live) == evaluated


def test_the_state_sharing_most_is_restored_only_when_it_gains_enough() -> None:
    states = PromptStates(4)
    states.store([*FACT, 1, 2, 3], b"fact")
    states.store([*CHAT, 4], b"chat")
    assert states.best([*FACT, 9], shared_now=0).state == b"fact"  # type: ignore[union-attr]
    assert states.best([*CHAT, 9], shared_now=0).state == b"chat"  # type: ignore[union-attr]
    assert states.best([*FACT, 9], shared_now=60 - MIN_GAIN_TOKENS + 1) is None  # the context shares nearly as much
    assert states.best([1, 2, 3], shared_now=0) is None


def test_one_state_per_kind_of_prompt_and_the_oldest_evicted() -> None:
    states = PromptStates(2)
    states.store([*FACT, 1], b"fact-1")
    states.store([*FACT, 2, 2], b"fact-2")  # same kind: replaces
    assert len(states) == 1 and states.best(FACT, 0).state == b"fact-2"  # type: ignore[union-attr]
    states.store(CHAT, b"chat")
    states.store(list(range(900, 940)), b"program")  # a third kind: the least recently used (fact) goes
    assert len(states) == 2 and states.best(FACT, 0) is None
    off = PromptStates(0)
    off.store(FACT, b"x")
    assert len(off) == 0


def test_flops_count_evaluated_prompt_tokens_and_nominal_counts_every_token() -> None:
    usage = Usage("small", prompt_tokens=100, completion_tokens=10, wall_seconds=0, cpu_seconds=0, parameters=1000,
                  price_per_million_tokens=1.0, evaluated_prompt_tokens=30)
    assert usage.flops == 2 * 1000 * 40 and usage.nominal_flops == 2 * 1000 * 110
    assert usage.to_dict()["evaluated_prompt_tokens"] == 30 and usage.cost_usd == 110 / 1e6
    unknown = Usage("x", 100, 10, 0, 0, 1000, 0.0)
    assert unknown.flops == unknown.nominal_flops == 2 * 1000 * 110
    assert unknown.to_dict()["evaluated_prompt_tokens"] == 100
