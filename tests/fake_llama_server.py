"""A stand-in for llama-server in supervision tests: takes its command line, answers /health (503 for the first
0.3 s, as while a model loads) and /v1/chat/completions with one fixed answer carrying token probabilities.
FAKE_LLAMA_UNHEALTHY_AFTER=N makes /health answer 500 after N seconds (a hung server)."""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        age = time.monotonic() - STARTED
        hang_after = float(os.environ.get("FAKE_LLAMA_UNHEALTHY_AFTER", "inf"))
        if self.path == "/health":
            status = 503 if age < 0.3 else 500 if age > hang_after else 200
            self._send(status, {"status": "ok" if status == 200 else "loading"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        words = ["Paris", "."]
        logprobs = {"content": [{"token": word, "logprob": -0.1, "top_logprobs": []} for word in words]}
        self._send(200, {"id": "fake", "object": "chat.completion", "model": request.get("model", ""),
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                                      "finish_reason": "stop", "logprobs": logprobs}],
                         "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    options, _ = parser.parse_known_args()
    print(f"fake llama-server {os.getpid()} on {options.host}:{options.port}", flush=True)
    ThreadingHTTPServer((options.host, options.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
