"""Does llama-server give a prompt the same token probabilities alone and alongside others? (#36)

Starts one llama-server on a GGUF file (the tier servers' command line: flash attention off, 4,096 tokens per slot,
2 threads), asks 8 prompts one at a time twice, then 4 at a time, at temperature 0, and
prints how many completions are the same text and the largest difference of a token's log-probability.

    python bench/batch_invariance.py --slots 1 --server-args=--no-cache-prompt \
        --model ~/.cache/small-first-assistant/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

Measured results: docs/BENCHMARKS.md ("The sixteenth session").
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import tempfile
import urllib.request
from pathlib import Path

from models.llama_server import TierServer, default_binary, free_port, server_command

PROMPTS = [
    "Write a haiku about the sea.", "What is the capital of France? Answer in one word.",
    "A farmer has 17 sheep and buys 5 more, then sells 8. Work it out step by step.",
    "Explain what a hash table is in two sentences.",
    "Context: The Ninja build system reads build.ninja files. It was written by Evan Martin.\n"
    "Question: Who wrote Ninja?",
    "List three colours.", "Translate 'good morning' to German.",
    "Summarise: The quick brown fox jumps over the lazy dog because the dog was sleeping in the sun all day long.",
]
Answer = tuple[str, list[float]]


def ask(url: str, prompt: str) -> Answer:
    """One greedy completion of ``prompt``: its text and each token's log-probability."""
    body = {"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 48,
            "logprobs": True, "top_logprobs": 1}
    request = urllib.request.Request(f"{url}/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        choice = json.load(response)["choices"][0]
    return choice["message"]["content"], [token["logprob"] for token in choice["logprobs"]["content"]]


def compare(first: list[Answer], second: list[Answer]) -> str:
    """How many texts are equal, and the largest log-probability difference of tokens at the same place."""
    same = sum(a[0] == b[0] for a, b in zip(first, second, strict=True))
    largest = max((abs(x - y) for a, b in zip(first, second, strict=True)
                   for x, y in zip(a[1], b[1], strict=False)), default=0.0)  # a differing text may differ in length
    return f"same text {same}/{len(first)}, largest log-probability difference {largest:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--binary", type=Path, default=None, help="llama-server (default: the built one)")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--server-args", default="", help="more llama-server arguments, space-separated")
    args = parser.parse_args()
    port = free_port()
    command = server_command(args.binary or default_binary(), args.model.expanduser(), alias="bench", port=port,
                             slots=args.slots, n_ctx=4096, threads=2, batch=512, extra=args.server_args.split())
    server = TierServer("bench", command, port, Path(tempfile.mkdtemp()) / "llama-server.log")
    server.spawn()
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_healthy(timeout=120)
        alone = [ask(url, prompt) for prompt in PROMPTS]
        again = [ask(url, prompt) for prompt in PROMPTS]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda prompt: ask(url, prompt), PROMPTS))
        print(f"slots {args.slots}, server arguments {args.server_args or '-'}")
        print(f"  one at a time, twice:       {compare(alone, again)}")
        print(f"  one at a time, 4 at a time: {compare(alone, together)}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
