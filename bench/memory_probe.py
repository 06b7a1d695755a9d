"""RSS of one process over many real small-model calls made from a pool of threads (the server's pattern).

Usage: python bench/memory_probe.py [--calls 300] [--threads 16] [--collect]

Loads the small model, warms the pool (every thread, every prompt), then makes ``--calls`` calls (short and long
prompts, 16 tokens each) and prints the RSS growth every 50 calls. ``--collect`` runs a full garbage collection
after every call, to tell memory held by reference cycles from memory really in use. glibc knobs go in the
environment (e.g. ``MALLOC_ARENA_MAX=1``).
"""

from __future__ import annotations

import argparse
import gc
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from assistant.core.settings import Settings
from models.registry import load_model

PROMPTS = [f"Say the number {index} in words." for index in range(5)] + [
    "Summarize: " + "the quick brown fox jumps. " * 40 * repeat for repeat in (1, 2, 3)
]


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--collect", action="store_true", help="gc.collect() after every call")
    args = parser.parse_args()
    model = load_model(Settings.load(), "small", progress=False)

    def call(index: int) -> None:
        model.chat([{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}], max_tokens=16)
        if args.collect:
            gc.collect()

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(call, range(max(args.threads, len(PROMPTS)))))  # every thread, every prompt length
        start_mb, started = _rss_mb(), time.perf_counter()
        for first in range(0, args.calls, 50):
            list(pool.map(call, range(first, min(first + 50, args.calls))))
            rss = _rss_mb()
            print(f"{min(first + 50, args.calls)} calls: RSS {rss:.0f} MB ({rss - start_mb:+.1f}), "
                  f"{time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
