"""What changes llama.cpp's numbers at temperature 0: its thread count, and what its context held before.

Each tier is loaded afresh (the product's model layer, its prompt-head cache off) and answers the same prompts
greedily (1) with 1 and with 2 threads, each prompt on a fresh context, and (2) with 2 threads, each prompt once on a
fresh context and once right after another prompt, whose shared leading tokens llama-cpp-python then reuses instead
of evaluating them again. Texts and every token probability are compared. What `eval run --workers N` with
in-process tiers rests on (each worker process gets 1/N of the threads and its own history of items;
docs/BENCHMARKS.md, "The fourteenth session").

Usage: python bench/thread_numerics.py

The prompts were written for this bench (none comes from a dataset).
"""

from __future__ import annotations

from assistant.core.settings import Settings
from models.base import ChatModel, Message
from models.registry import load_model

PROMPTS = ("Write a haiku about autumn leaves.", "What is the capital of Australia?",
           "Ana has 12 apples and gives 5 away. How many are left? Think step by step.")
BEFORE = "Name three colours of the rainbow."


def _model(tier: str, threads: int) -> ChatModel:
    settings = Settings()
    settings.llama.n_threads = threads
    settings.llama.prompt_cache_entries = 0
    return load_model(settings, tier, progress=False)


def _answer(model: ChatModel, prompt: str) -> tuple[str, list[float]]:
    messages: list[Message] = [{"role": "user", "content": prompt}]
    completion = model.chat(messages, max_tokens=48, temperature=0.0)
    return completion.text, list(completion.token_probabilities)


def _fresh(tier: str, threads: int, prompt: str) -> tuple[str, list[float]]:
    return _answer(_model(tier, threads), prompt)


def _after_another(tier: str, prompt: str) -> tuple[str, list[float]]:
    model = _model(tier, 2)
    _answer(model, BEFORE)
    return _answer(model, prompt)


def _row(tier: str, comparison: str, prompt: str, first: tuple[str, list[float]],
         second: tuple[str, list[float]]) -> str:
    largest = max((abs(a - b) for a, b in zip(first[1], second[1], strict=False)), default=0.0)
    return f"| {tier} | {comparison} | {prompt[:40]} | {first[0] == second[0]} | {len(first[1])} | {largest:.2e} |"


def main() -> None:
    print("| tier | compared | prompt | same text | tokens | largest difference of a token probability |")
    print("|---|---|---|---|---|---|")
    for tier in ("small", "large"):
        for prompt in PROMPTS:
            fresh = _fresh(tier, 2, prompt)
            print(_row(tier, "1 thread / 2 threads", prompt, _fresh(tier, 1, prompt), fresh), flush=True)
            print(_row(tier, "after another prompt / fresh", prompt, _after_another(tier, prompt), fresh),
                  flush=True)


if __name__ == "__main__":
    main()
