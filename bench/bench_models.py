"""Raw llama-cpp-python vs the same prompt through LlamaCppModel, and generation vs the bandwidth ceiling.

The generation ceiling is memory read bandwidth (with llama.cpp's thread count) / model file bytes.

Usage: python bench/bench_models.py [--models small,large] [--repeats 5] [--max-tokens 128] [--output DIR]

Each (model, backend) pair runs in its own subprocess so peak RSS is its own. The KV cache is reset before
every repetition, so each one processes the whole prompt. Both backends decode greedily, so they generate
the same tokens; token counts come from the interface's usage record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROMPT = ("Write a detailed, multi-paragraph essay on the history of computing, from mechanical calculators "
          "through vacuum tubes, transistors and integrated circuits to modern multicore processors. "
          "Mention key people, machines and dates.")


def measure_bandwidth(threads: int, gib: float = 1.0, repeats: int = 5) -> float:
    """Memory read bandwidth in GB/s with ``threads`` threads, each taking the max of its slice.

    ``max`` streams the buffer with SIMD and is bandwidth-bound (numpy's float ``sum`` is not: it is
    compute-bound pairwise summation). Use as many threads as llama.cpp does.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    data = np.ones(int(gib * 2**30 / 4), dtype=np.float32)
    slices = [data[i * len(data) // threads:(i + 1) * len(data) // threads] for i in range(threads)]
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            started = time.perf_counter()
            list(pool.map(np.max, slices))
            best = min(best, time.perf_counter() - started)
    return data.nbytes / best / 1e9


def run_one(alias: str, backend: str, repeats: int, max_tokens: int) -> dict[str, Any]:
    """Run in a subprocess: load the model, time ``repeats`` generations, report per-run figures."""
    from assistant.core.settings import Settings
    from models.base import Completion
    from models.llama_cpp_backend import LlamaCppModel
    from models.registry import load_model

    model = load_model(Settings.load(), alias, progress=False)
    assert isinstance(model, LlamaCppModel)
    messages: list[Any] = [{"role": "user", "content": PROMPT}]
    runs = []
    for _ in range(repeats + 1):  # the first run warms up and is dropped
        with model.lock:
            model.llama.reset()
        started = time.perf_counter()
        first = None
        if backend == "raw":
            with model.lock:
                for chunk in model.llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                               temperature=0.0, stream=True):
                    if first is None and chunk["choices"][0]["delta"].get("content"):
                        first = time.perf_counter()
            tokens = None
        else:
            final = None
            for item in model.stream(messages, max_tokens=max_tokens, temperature=0.0):
                if isinstance(item, Completion):
                    final = item
                elif first is None:
                    first = time.perf_counter()
            assert final is not None
            tokens = (final.usage.prompt_tokens, final.usage.completion_tokens)
        ended = time.perf_counter()
        assert first is not None
        runs.append({"ttft_s": first - started, "total_s": ended - started, "tokens": tokens})
    if backend == "raw":  # same greedy tokens as the interface; count them once with it
        counted = model.chat(messages, max_tokens=max_tokens)
        for run in runs:
            run["tokens"] = (counted.usage.prompt_tokens, counted.usage.completion_tokens)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"alias": alias, "backend": backend, "model_bytes": model.path.stat().st_size,
            "runs": runs[1:], "peak_rss_mb": peak_rss_mb}


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Median and spread of prompt tok/s, generation tok/s and first-token latency."""
    prompt_rates, gen_rates, ttfts, gen_seconds = [], [], [], []
    for run in result["runs"]:
        prompt_tokens, completion_tokens = run["tokens"]
        prompt_rates.append(prompt_tokens / run["ttft_s"])
        gen_time = run["total_s"] - run["ttft_s"]
        gen_seconds.append(gen_time)
        gen_rates.append((completion_tokens - 1) / gen_time)
        ttfts.append(run["ttft_s"])

    def stat(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {"alias": result["alias"], "backend": result["backend"], "model_bytes": result["model_bytes"],
            "prompt_tokens": result["runs"][0]["tokens"][0], "completion_tokens": result["runs"][0]["tokens"][1],
            "prompt_tok_s": stat(prompt_rates), "gen_tok_s": stat(gen_rates), "ttft_s": stat(ttfts),
            "gen_seconds": stat(gen_seconds), "peak_rss_mb": result["peak_rss_mb"], "repeats": len(result["runs"])}


def paired_overhead(alias: str, pairs: int, max_tokens: int) -> str:
    """Raw and interface generation alternating in one process (so drift and steal hit both alike)."""
    from assistant.core.settings import Settings
    from models.base import Completion
    from models.llama_cpp_backend import LlamaCppModel
    from models.registry import load_model

    settings = Settings.load()
    settings = settings.model_copy(update={"llama": settings.llama.model_copy(update={"prompt_cache_entries": 0})})
    model = load_model(settings, alias, progress=False)
    assert isinstance(model, LlamaCppModel)
    messages: list[Any] = [{"role": "user", "content": PROMPT}]

    def generation_seconds(interface: bool) -> float:
        with model.lock:
            model.llama.reset()
        first = None
        if interface:
            for item in model.stream(messages, max_tokens=max_tokens, temperature=0.0):
                if first is None and not isinstance(item, Completion):
                    first = time.perf_counter()
        else:
            with model.lock:
                for chunk in model.llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                               temperature=0.0, stream=True):
                    if first is None and chunk["choices"][0]["delta"].get("content"):
                        first = time.perf_counter()
        assert first is not None
        return time.perf_counter() - first

    generation_seconds(False), generation_seconds(True)  # warm-up
    ratios = []
    for _ in range(pairs):
        raw = generation_seconds(False)
        ratios.append(generation_seconds(True) / raw)
    return (f"- {alias}: interface / raw generation time, {pairs} interleaved pairs: median "
            f"{statistics.median(ratios):.3f} (pairs {min(ratios):.3f}-{max(ratios):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="small,large")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    parser.add_argument("--child", nargs=2, metavar=("ALIAS", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--paired", type=int, default=0, metavar="N",
                        help="instead: N raw/interface pairs alternating in one process per model (prompt cache "
                             "off), printing the median paired ratio of generation times")
    args = parser.parse_args()
    if args.paired:
        for alias in args.models.split(","):
            print(paired_overhead(alias, args.paired, args.max_tokens))
        return 0
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], args.repeats, args.max_tokens)))
        return 0

    from assistant.core.settings import Settings

    threads = Settings.load().llama.n_threads
    bandwidth = measure_bandwidth(threads)
    single = measure_bandwidth(1)
    print(f"memory read bandwidth: {single:.1f} GB/s (1 thread), {bandwidth:.1f} GB/s ({threads} threads)",
          file=sys.stderr)
    summaries = []
    for alias in args.models.split(","):
        for backend in ("raw", "interface"):
            print(f"running {alias} / {backend} ...", file=sys.stderr)
            output = subprocess.run(
                [sys.executable, __file__, "--child", alias, backend, "--repeats", str(args.repeats),
                 "--max-tokens", str(args.max_tokens)], check=True, capture_output=True, text=True).stdout
            summaries.append(summarise(json.loads(output.strip().splitlines()[-1])))

    report = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "processor": _cpu_model(), "llama_threads": threads,
                          "bandwidth_gb_s": bandwidth, "bandwidth_gb_s_1_thread": single},
              "settings": {"repeats": args.repeats, "max_tokens": args.max_tokens}, "results": summaries}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_models.json").write_text(json.dumps(report, indent=2))
    print(render_markdown(report))
    return 0


def render_markdown(report: dict[str, Any]) -> str:
    """The table for docs/BENCHMARKS.md."""
    bandwidth = report["machine"]["bandwidth_gb_s"]
    lines = ["| model | backend | prompt tok/s | gen tok/s | first token (s) | peak RSS (MB) | ceiling tok/s | "
             "gen / ceiling |", "|---|---|---|---|---|---|---|---|"]
    by_key = {(s["alias"], s["backend"]): s for s in report["results"]}
    for summary in report["results"]:
        ceiling = bandwidth * 1e9 / summary["model_bytes"]
        gen = summary["gen_tok_s"]
        lines.append(
            f"| {summary['alias']} | {summary['backend']} | {summary['prompt_tok_s']['median']:.0f} "
            f"({summary['prompt_tok_s']['min']:.0f}-{summary['prompt_tok_s']['max']:.0f}) | {gen['median']:.1f} "
            f"({gen['min']:.1f}-{gen['max']:.1f}) | {summary['ttft_s']['median']:.3f} | "
            f"{summary['peak_rss_mb']:.0f} | {ceiling:.1f} | {gen['median'] / ceiling:.0%} |")
    lines.append("")
    for alias in dict.fromkeys(s["alias"] for s in report["results"]):
        raw, ours = by_key.get((alias, "raw")), by_key.get((alias, "interface"))
        if raw and ours:
            overhead = ours["gen_seconds"]["median"] / raw["gen_seconds"]["median"] - 1
            lines.append(f"- {alias}: LlamaCppModel generation time vs raw llama-cpp-python: {overhead:+.1%} "
                         f"(median of {ours['repeats']}; {ours['prompt_tokens']} prompt + "
                         f"{ours['completion_tokens']} generated tokens)")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
