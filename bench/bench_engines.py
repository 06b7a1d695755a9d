"""Model turns per minute and latency at 1, 4, 8 and 16 concurrent clients: in-process tiers against llama-server
tiers (issue #36), or any running deployment (--url, e.g. `deploy/run.sh 1` against `deploy/run.sh 2`).

Usage: python bench/bench_engines.py --engine in-process|llama-server [--clients 1,4,8,16] [--output FILE]
       python bench/bench_engines.py --url http://127.0.0.1:8000 --label "two replicas" [--output FILE]

Without --url it starts `assistant serve` on a free loopback port with the default models and the SQuAD dev
knowledge base, admission wide enough that no request is refused (concurrency 16, queue 64: the engines are
compared, not the queue), and one warm-up turn of each kind on both tiers. Every level sends the same questions
(factual questions on dev-split SQuAD articles and short chat, alternating, non-streaming, max_tokens 64, the
escalation decision as shipped): max(16, 3 x clients) requests, each client taking the next question when its last
one is answered. Reports answered per minute, latency p50/p95 and how many turns escalated, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from common.stats import latency_summary
from models.llama_server import free_port

QUESTIONS = [
    "What type of compounds does oxygen most commonly form?", "Say hello in French.",
    "Where is the Amazon rainforest?", "Give me one tip for better sleep.",
    "What theorem defines the main role of primes in number theory?", "Name a colour of the sky.",
    "Who founded the Yuan dynasty?", "Suggest a name for a grey cat.",
]


@contextmanager
def serving(engine: str) -> Iterator[str]:
    """`assistant serve` with ``engine`` tiers on a free port; its base URL."""
    port = free_port()
    folder = Path(tempfile.mkdtemp())
    env = dict(os.environ, ASSISTANT_ASSISTANT__CHECKPOINT_PATH=str(folder / "threads.sqlite"),
               ASSISTANT_LLAMA__ENGINE=engine, ASSISTANT_SERVER__CONCURRENCY="16", ASSISTANT_SERVER__QUEUE_SIZE="64")
    command = [str(Path(sys.executable).with_name("assistant")), "serve", "--port", str(port),
               "--retrieval-knowledge-base", "squad", "--retrieval-index-name", "load-test"]
    log = folder / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while not _healthy(base):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ask(client: httpx.Client, base: str, question: str, escalation: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "assistant", "max_tokens": 64, "messages": [{"role": "user", "content": question}]}
    if escalation:
        body["escalation"] = escalation
    started = time.perf_counter()
    response = client.post(base + "/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        return {"status": response.status_code, "seconds": elapsed}
    meta = response.json().get("x_assistant", {})
    return {"status": 200, "seconds": elapsed, "route": meta.get("route"), "escalated": bool(meta.get("escalated"))}


def level(base: str, clients: int) -> dict[str, Any]:
    """``clients`` concurrent clients answering max(16, 3 x clients) questions between them."""
    total = max(16, 3 * clients)
    queue = [QUESTIONS[index % len(QUESTIONS)] for index in range(total)]
    outcomes: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client_loop() -> None:
        with httpx.Client(timeout=httpx.Timeout(900, connect=10)) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    question = queue.pop(0)
                outcome = _ask(client, base, question)
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    answered = [outcome for outcome in outcomes if outcome["status"] == 200]
    return {"clients": clients, "requests": total, "answered": len(answered), "seconds": round(elapsed, 1),
            "answered_per_minute": round(60 * len(answered) / elapsed, 1),
            "latency_s": latency_summary([outcome["seconds"] for outcome in answered], 2),
            "escalated": sum(outcome["escalated"] for outcome in answered),
            "failed": [outcome for outcome in outcomes if outcome["status"] != 200][:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["in-process", "llama-server"], default="in-process")
    parser.add_argument("--url", help="measure a running server or deployment instead of starting one")
    parser.add_argument("--label", default="", help="what --url is, for the report")
    parser.add_argument("--clients", default="1,4,8,16", help="comma-separated client counts")
    parser.add_argument("--output", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args()

    def measure(base: str) -> dict[str, Any]:
        with httpx.Client(timeout=900) as client:  # both tiers loaded and each kind of turn taken once
            for question in QUESTIONS[:2]:
                _ask(client, base, question, escalation="always")
        levels = []
        for clients in (int(value) for value in args.clients.split(",")):
            levels.append(level(base, clients))
            print(json.dumps(levels[-1]), flush=True)
        return {"engine": args.label or args.engine, "levels": levels}

    if args.url:
        report = measure(args.url.rstrip("/"))
    else:
        with serving(args.engine) as base:
            report = measure(base)
    report["machine"] = {"cpus": os.cpu_count(), "model": _cpu_model()}
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
