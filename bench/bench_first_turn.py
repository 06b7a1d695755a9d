"""Time to ready and the first word problem's latency of `assistant serve`, with and without preloading the large tier.

Usage: python bench/bench_first_turn.py [--runs 2] [--port 8012]

Each run starts a fresh server (threads in a temporary file), waits for ``/health``, asks one word problem (which the
large model answers) and stops the server; ``server.preload_large`` alternates between off and on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ASSISTANT = str(Path(sys.executable).with_name("assistant"))
QUESTION = "A farmer has 12 rows of 8 apple trees and plants 15 more trees. How many trees does he have?"


def one_run(preload: bool, port: int, folder: Path) -> tuple[float, float, str]:
    """Seconds until /health answers, the first word problem's wall seconds (as the answer reports), its text."""
    env = dict(os.environ, ASSISTANT_SERVER__PRELOAD_LARGE=str(preload).lower(),
               ASSISTANT_ASSISTANT__CHECKPOINT_PATH=str(folder / f"threads-{preload}-{time.time_ns()}.sqlite"))
    started = time.perf_counter()
    with (folder / "serve.log").open("a") as log:
        process = subprocess.Popen([ASSISTANT, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                   env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server stopped; see {folder / 'serve.log'}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        ready = time.perf_counter() - started
        reply = httpx.post(url + "/v1/chat/completions", timeout=300, json={
            "model": "assistant", "messages": [{"role": "user", "content": QUESTION}]}).json()
        return ready, float(reply["x_assistant"]["wall_seconds"]), reply["choices"][0]["message"]["content"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--port", type=int, default=8012)
    args = parser.parse_args()
    print("| preload_large | run | ready after (s) | first word problem (s) | answer |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for run in range(1, args.runs + 1):
            for preload in (False, True):
                ready, first, text = one_run(preload, args.port, Path(folder))
                print(f"| {str(preload).lower()} | {run} | {ready:.1f} | {first:.1f} | {text} |", flush=True)


if __name__ == "__main__":
    main()
