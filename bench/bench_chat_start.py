"""What a chat turn costs when it starts on the small model against the large one, on the default models.

Usage: python bench/bench_chat_start.py [--prompts N] [--output DIR]

N chat-dev prompts (dev items: MT-bench and AlpacaEval) are asked through the Python API's stream with escalation on,
once with ``assistant.chat_start = "small"`` (the small model drafts; its calibrated confidence decides whether the
large model takes over) and once with ``"large"`` (the large model answers from the start). Per turn: time to the
first token shown, time to the answer, tokens per model, FLOPs, and whether the small draft escalated. The two runs
alternate prompt by prompt, so a busy moment of the machine falls on both.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.api import Assistant
from assistant.core.settings import Settings
from common.stats import latency_summary
from eval.suites import chat_dev_items

STARTS = ("small", "large")


def timed_turn(assistant: Assistant, question: str) -> dict[str, Any]:
    """One streamed turn: seconds to the first token, to the answer, and what the answer says it cost."""
    started = time.perf_counter()
    first: float | None = None
    for event in assistant.stream(question):
        if event["type"] == "token" and first is None:
            first = time.perf_counter() - started
        if event["type"] == "answer":
            answer = event["answer"]
    total = time.perf_counter() - started
    cost = answer.cost.to_dict()
    return {"route": answer.route, "escalated": answer.escalated, "confidence": answer.confidence,
            "first_token_s": first, "answer_s": total, "flops": cost["total"]["flops"],
            "completion_tokens": {tier: figures["completion_tokens"] for tier, figures in cost["per_model"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    base = Settings.load()
    assistants = {}
    for start in STARTS:
        settings = base.model_copy(deep=True)
        settings.assistant.chat_start = start  # type: ignore[assignment]
        settings.assistant.checkpoint_path = Path(tempfile.mkdtemp()) / "threads.sqlite"
        assistants[start] = Assistant.from_settings(settings, progress=False)
    prompts = [item.question for item in chat_dev_items(base.dataset_store(), progress=False)][: args.prompts]
    turns: dict[str, list[dict[str, Any]]] = {start: [] for start in STARTS}
    for start in STARTS:  # warm both: the first call of a model loads its weights
        assistants[start].ask("Say hello.")
    for number, prompt in enumerate(prompts, 1):
        for start in STARTS:
            turn = timed_turn(assistants[start], prompt)
            turns[start].append(turn)
            print(f"{number:>2} start={start:<5} route={turn['route']:<4} escalated={turn['escalated']!s:<5} "
                  f"first token {turn['first_token_s'] or 0:6.2f} s, answer {turn['answer_s']:6.2f} s, "
                  f"{turn['flops']:.2e} FLOPs, tokens {turn['completion_tokens']}", flush=True)
    summary: dict[str, Any] = {"prompts": len(prompts), "chat_threshold": base.assistant.chat_threshold}
    for start, measured in turns.items():
        chat = [turn for turn in measured if turn["route"] == "CHAT"]
        summary[start] = {
            "chat_turns": len(chat), "escalated": sum(turn["escalated"] for turn in chat),
            "first_token_s": latency_summary([turn["first_token_s"] or 0.0 for turn in chat]),
            "answer_s": latency_summary([turn["answer_s"] for turn in chat]),
            "flops_mean": sum(turn["flops"] for turn in chat) / max(1, len(chat)),
            "turns": measured}
        row = summary[start]
        print(f"chat_start={start}: {row['chat_turns']} CHAT turns, {row['escalated']} escalated; first token p50 "
              f"{row['first_token_s']['p50']:.2f} s, answer p50 {row['answer_s']['p50']:.2f} s "
              f"p95 {row['answer_s']['p95']:.2f} s; {row['flops_mean']:.2e} FLOPs per turn")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_chat_start.json").write_text(json.dumps(summary, indent=2))
    for assistant in assistants.values():
        assistant.close()


if __name__ == "__main__":
    main()
