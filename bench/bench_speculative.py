"""Prompt-lookup speculative decoding on the large model's word-problem programs: speed and whether outputs change.

Usage: python bench/bench_speculative.py [--limit 10] [--draft-tokens 0,4,8]

Raw llama-cpp-python (no prompt cache, no probability pass), the graph's program prompt and JSON-schema grammar,
greedy, on the first ``--limit`` word problems of mixed-dev. ``--draft-tokens 0`` is plain decoding; any other value
uses ``LlamaPromptLookupDecoding`` (draft tokens copied from n-grams already in the context), which the JSON programs
seemed made for: names and keys repeat.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from assistant.core.program import PROGRAM_SCHEMA
from assistant.core.prompts import program_messages
from assistant.core.settings import Settings
from eval.suites import mixed_items
from models.registry import gguf_path


def run(path: str, questions: list[str], draft_tokens: int) -> tuple[float, int, list[str]]:
    """Seconds, completion tokens and replies for ``questions`` with ``draft_tokens`` drafted a step (0: none)."""
    import llama_cpp
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    options: dict[str, Any] = {}
    if draft_tokens:
        options = {"draft_model": LlamaPromptLookupDecoding(num_pred_tokens=draft_tokens), "logits_all": True}
    llama = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=2, n_threads_batch=2, n_batch=512, seed=0,
                            verbose=False, **options)
    grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(PROGRAM_SCHEMA), verbose=False)
    replies, tokens = [], 0
    started = time.perf_counter()
    for question in questions:
        reply = llama.create_chat_completion(messages=program_messages(question), max_tokens=256, temperature=0.0,
                                             grammar=grammar)
        replies.append(reply["choices"][0]["message"]["content"])
        tokens += reply["usage"]["completion_tokens"]
    return time.perf_counter() - started, tokens, replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--draft-tokens", default="0,4,8")
    args = parser.parse_args()
    settings = Settings.load()
    path = str(gguf_path(settings.model_spec("large"), settings, progress=False))
    questions = [item.question for item in mixed_items(settings.dataset_store(), "dev", progress=False)
                 if item.kind == "word_problem"][: args.limit]
    print("| draft tokens | seconds | output tokens | tokens / s | replies identical to plain decoding |")
    print("|---|---|---|---|---|")
    plain: list[str] | None = None
    for draft in (int(value) for value in args.draft_tokens.split(",")):
        seconds, tokens, replies = run(path, questions, draft)
        plain = plain if plain is not None else replies
        same = sum(reply == reference for reply, reference in zip(replies, plain, strict=True))
        print(f"| {draft} | {seconds:.1f} | {tokens} | {tokens / seconds:.1f} | {same} of {len(replies)} |",
              flush=True)


if __name__ == "__main__":
    main()
