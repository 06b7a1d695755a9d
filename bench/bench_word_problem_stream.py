"""Time to the first visible text of a word problem's answer, through a real `assistant serve` over its socket.

Usage: python bench/bench_word_problem_stream.py [--limit 10] [--port 8014] [--split dev]

Starts a fresh server on the default models with an empty index (a temporary directory), waits for ``/health``,
warms it with one plain arithmetic question, then streams the first ``--limit`` word problems of
``word-problems-<split>`` one at a time, as the page does (``stream: true``). For each: seconds until the first chunk
that shows something (``reasoning_content``: the working; or ``content``), until the answer's first ``content``,
and in all. Prints one line per problem and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from assistant.core.settings import Settings
from eval.suites import suite_loaders

ASSISTANT = str(Path(sys.executable).with_name("assistant"))


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Block until the server answers /health (exit if it died)."""
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped; see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


def streamed(url: str, question: str) -> tuple[float, float, float, str]:
    """(first visible s, first answer text s, total s, the answer) of one streamed question."""
    body = {"model": "assistant", "stream": True, "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    first = answer_at = None
    text = ""
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            now = time.perf_counter() - started
            if (delta.get("reasoning_content") or delta.get("content")) and first is None:
                first = now
            if delta.get("content"):
                answer_at = answer_at if answer_at is not None else now
                text += delta["content"]
    total = time.perf_counter() - started
    return first if first is not None else total, answer_at if answer_at is not None else total, total, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--port", type=int, default=8014)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    args = parser.parse_args()
    settings = Settings.load()
    items = suite_loaders(settings.dataset_store(), progress=False)[f"word-problems-{args.split}"]().items
    folder = Path(tempfile.mkdtemp(prefix="bench-wp-stream-"))
    env = dict(os.environ, ASSISTANT_RETRIEVAL__INDEX_DIR=str(folder / "index"),
               ASSISTANT_ASSISTANT__CHECKPOINT_PATH=str(folder / "threads.sqlite"))
    log = folder / "serve.log"
    with log.open("a") as output:
        process = subprocess.Popen([ASSISTANT, "serve", "--port", str(args.port)], stdout=output,
                                   stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{args.port}"
    try:
        wait_ready(url, process, log)
        streamed(url, "What is 2 + 2?")
        rows = []
        print(f"{'item':<22} {'first visible s':>15} {'answer s':>9} {'total s':>8}  answer")
        for item in items[: args.limit]:
            first, answer_at, total, text = streamed(url, item.question)
            rows.append((first, answer_at, total))
            print(f"{item.id:<22} {first:>15.2f} {answer_at:>9.2f} {total:>8.2f}  {text!r}", flush=True)
        print(f"{'median':<22} {statistics.median(r[0] for r in rows):>15.2f} "
              f"{statistics.median(r[1] for r in rows):>9.2f} {statistics.median(r[2] for r in rows):>8.2f}")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
