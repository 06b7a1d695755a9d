"""A bounded load test of the real server on the default models (loopback only).

Usage: python bench/load_test.py [--clients 32] [--seconds 300] [--max-requests 5000] [--output DIR]

Starts `assistant serve` on a free loopback port, measures the server's own overhead (plain arithmetic over HTTP
against the same through the Python API), then runs N concurrent streaming clients for a fixed time or request
count on a mix of questions (60% plain arithmetic, 25% factual, 15% short chat). Reports throughput, latency and
time-to-first-token percentiles, how many requests were answered, refused with 429/503 (expected backpressure, each
must carry Retry-After) or failed, and the server's memory over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from common.stats import latency_summary
from models.llama_server import free_port

QUESTIONS = {
    "arithmetic": [f"What is {a} times {b}?" for a, b in ((347, 29), (697, 205), (12, 12), (981, 77), (45, 3))],
    # dev-split SQuAD v2.0 articles, indexed by the server as its knowledge base for this test
    "factual": ["What type of compounds does oxygen most commonly form?", "Where is the Amazon rainforest?",
                "What theorem defines the main role of primes in number theory?", "Who founded the Yuan dynasty?"],
    "chat": ["Say hello in French.", "Give me one tip for better sleep.", "Name a colour of the sky."],
}
WEIGHTS = {"arithmetic": 0.6, "factual": 0.25, "chat": 0.15}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _one(client: httpx.Client, url: str, kind: str, question: str) -> dict[str, Any]:
    body = {"model": "assistant", "stream": True, "max_tokens": 64,
            "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    first: float | None = None
    try:
        with client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                response.read()
                return {"kind": kind, "status": response.status_code, "ms": (time.perf_counter() - started) * 1000,
                        "retry_after": response.headers.get("retry-after")}
            done = False
            for line in response.iter_lines():
                has_text = '"content": "' in line and '"content": ""' not in line
                if line.startswith("data: ") and has_text and first is None:
                    first = time.perf_counter()
                if line == "data: [DONE]":
                    done = True
            status = 200 if done else -1
    except httpx.HTTPError as error:
        return {"kind": kind, "status": -1, "ms": (time.perf_counter() - started) * 1000, "error": str(error)}
    return {"kind": kind, "status": status, "ms": (time.perf_counter() - started) * 1000,
            "ttft_ms": None if first is None else (first - started) * 1000}


def _overhead(base: str, requests: int = 100) -> dict[str, float]:
    """Plain arithmetic over HTTP (non-streaming) vs the Python API, sequentially, same process tree."""
    from assistant.api import Assistant
    from assistant.core.settings import Settings

    with httpx.Client(timeout=60) as client:
        http = []
        for index in range(requests):
            started = time.perf_counter()
            client.post(f"{base}/v1/chat/completions",
                        json={"messages": [{"role": "user", "content": f"What is {index} + 17?"}]}).raise_for_status()
            http.append((time.perf_counter() - started) * 1000)
    settings = Settings.load()
    settings.assistant.checkpoint_path = Path(tempfile.mkdtemp()) / "threads.sqlite"
    assistant = Assistant.from_settings(settings, progress=False)
    api = []
    for index in range(requests):
        started = time.perf_counter()
        assistant.ask(f"What is {index} + 17?")
        api.append((time.perf_counter() - started) * 1000)
    assistant.close()
    http_p50, api_p50 = statistics.median(http), statistics.median(api)
    return {"http_p50_ms": round(http_p50, 2), "api_p50_ms": round(api_p50, 2),
            "server_overhead_p50_ms": round(http_p50 - api_p50, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp()) / "serve.log"
    env = dict(os.environ, ASSISTANT_ASSISTANT__CHECKPOINT_PATH=str(log.parent / "threads.sqlite"))
    executable = str(Path(sys.executable).with_name("assistant"))
    with log.open("w") as output:
        command = [executable, "serve", "--port", str(port),
                   "--retrieval-knowledge-base", "squad", "--retrieval-index-name", "load-test"]
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        overhead = _overhead(base)
        print(f"server overhead: {overhead}", flush=True)
        # Load both tiers and take every kind of turn once on each before measuring, so memory and latency
        # describe the steady state (llama.cpp touches its buffers' pages as prompts get longer).
        for kind in ("factual", "chat"):
            httpx.post(f"{base}/v1/chat/completions", timeout=600,
                       json={"messages": [{"role": "user", "content": QUESTIONS[kind][0]}], "escalation": "always"})

        results: list[dict[str, Any]] = []
        lock = threading.Lock()
        memory: list[float] = [_rss_mb(server.pid)]
        stop_at = time.monotonic() + args.seconds
        generator = random.Random(7)
        kinds = list(WEIGHTS)

        def client_loop(seed: int) -> None:
            local = random.Random(seed)
            with httpx.Client(timeout=httpx.Timeout(300, connect=10)) as client:
                while time.monotonic() < stop_at:
                    with lock:
                        if len(results) >= args.max_requests:
                            return
                    kind = local.choices(kinds, weights=[WEIGHTS[k] for k in kinds])[0]
                    outcome = _one(client, f"{base}/v1/chat/completions", kind, local.choice(QUESTIONS[kind]))
                    with lock:
                        results.append(outcome)
                    if outcome["status"] in (429, 503):
                        time.sleep(min(float(outcome.get("retry_after") or 1), 5.0))

        threads = [threading.Thread(target=client_loop, args=(generator.random(),)) for _ in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(5)
            memory.append(_rss_mb(server.pid))
            with lock:
                print(f"  {time.monotonic() - started:5.0f} s: {len(results)} requests", flush=True)
        elapsed = time.monotonic() - started
        answered = [r for r in results if r["status"] == 200]
        refused = [r for r in results if r["status"] in (429, 503)]
        failed = [r for r in results if r not in answered and r not in refused]
        report = {
            "clients": args.clients, "seconds": round(elapsed, 1), "requests": len(results),
            "answered": len(answered), "refused_429_503": len(refused),
            "refused_without_retry_after": sum(1 for r in refused if not r.get("retry_after")),
            "failed": len(failed), "server_5xx": sum(1 for r in results if 500 <= r["status"] < 600),
            "answered_per_s": round(len(answered) / elapsed, 2),
            "latency_ms": {kind: latency_summary([r["ms"] for r in answered if r["kind"] == kind], 1)
                           for kind in WEIGHTS},
            "ttft_ms": {kind: latency_summary([r["ttft_ms"] for r in answered
                                               if r["kind"] == kind and r.get("ttft_ms")], 1) for kind in WEIGHTS},
            "refusal_ms": latency_summary([r["ms"] for r in refused], 1),
            "server_rss_mb": {"start": round(memory[0], 1), "half": round(memory[len(memory) // 2], 1),
                              "end": round(memory[-1], 1), "max": round(max(memory), 1),
                              "every_5s": [round(value) for value in memory]},
            "server_alive": server.poll() is None,
            "overhead": overhead,
            "failures": failed[:10],
        }
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "load_test.json").write_text(json.dumps(report, indent=2))
        print(json.dumps({key: value for key, value in report.items() if key != "failures"}, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
