"""The eval with the real models: `assistant eval run` on a user JSONL file and its own corpus, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from eval.results import load_results

QUESTIONS = [
    {"id": "capital", "question": "What is the capital city of Freedonia?", "answers": ["Fredville"],
     "kind": "fact"},
    {"id": "mul", "question": "What is 347 * 29?", "answers": ["10063"], "kind": "arithmetic"},
    {"id": "apples", "question": "Ana has 12 apples. She gives 5 apples to Ben and then buys 7 more apples. "
     "How many apples does Ana have now?", "answers": ["14"], "kind": "word_problem"},
    {"id": "haiku", "question": "Write a haiku about autumn leaves.", "kind": "chat"},
]
CORPUS = [
    {"id": "freedonia", "title": "Freedonia",
     "text": "Freedonia is a small fictional country. Its capital city is Fredville, on the river Fred."},
    {"id": "sylvania", "title": "Sylvania", "text": "Sylvania borders Freedonia. Its capital is Sylvan Heights."},
]


def _default_settings_environment() -> dict[str, str]:
    """The environment without ASSISTANT_* settings, except the cache directory (CI's is a fresh one)."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith("ASSISTANT_") or key == "ASSISTANT_CACHE_DIR"}


def run_with_workers(tmp_path: Path, counts: tuple[int, ...], *options: str,
                     settings: dict[str, str] | None = None) -> dict[int, dict[str, Any]]:
    """`eval run --workers N` of routed-no-escalation and large-only on QUESTIONS over CORPUS for each N in ``counts``,
    with fresh item ids per run (neither reads another's cached records) and ``settings`` as ASSISTANT_* variables:
    each run's results, the nonce taken off the item ids again."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(item) for item in CORPUS) + "\n")
    nonce = uuid.uuid4().hex[:8]
    runs: dict[int, dict[str, Any]] = {}
    for workers in counts:
        questions = tmp_path / f"questions-{workers}.jsonl"
        questions.write_text("\n".join(json.dumps({**item, "id": f"{item['id']}-{nonce}-{workers}"})
                                       for item in QUESTIONS) + "\n")
        command = [sys.executable, "-m", "assistant.cli", "eval", "run", "--suite", str(questions), "--corpus",
                   str(corpus), "--systems", "routed-no-escalation,large-only", *options,
                   "--workers", str(workers), "--output", str(tmp_path / f"out-{workers}")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False,
                              env=_default_settings_environment() | (settings or {}))
        assert done.returncode == 0, done.stderr[-3000:]
        results = load_results(tmp_path / f"out-{workers}")
        assert results["meta"]["workers"] == workers
        assert results["meta"]["computed"] == {"routed-no-escalation": 4, "large-only": 4}
        results["systems"] = {name: {key.rsplit("-", 2)[0]: record for key, record in records.items()}
                              for name, records in results["systems"].items()}
        results["stderr"] = done.stderr
        runs[workers] = results
    return runs


def _answer_of(record: dict[str, Any]) -> dict[str, Any]:
    """What a record says and what it cost in tokens, without times, token probabilities or restored prompt heads."""
    said = {key: record.get(key) for key in ("text", "route", "route_stage", "escalated", "answerable",
                                              "general_knowledge", "not_in_documents", "working")}
    return {**said, "sources": [(source["chunk_id"], source["used"]) for source in record["sources"]],
            "usage": [(call["step"], call["tier"], call["prompt_tokens"], call["completion_tokens"])
                      for call in record["usage"]]}


MEASURED = {"item_id", "wall_seconds", "cpu_seconds", "energy_joules", "energy_source"}
"""What a record measures of its own run (times, energy) or names it by, not what it computed."""


def _computed(record: dict[str, Any]) -> dict[str, Any]:
    """A record without :data:`MEASURED`, in its model calls too."""
    kept = {key: value for key, value in record.items() if key not in MEASURED}
    kept["usage"] = [{key: value for key, value in call.items() if key not in MEASURED} for call in record["usage"]]
    return kept


@pytest.mark.slow
def test_eval_with_worker_processes_writes_the_records_of_one_at_a_time(tmp_path: Path) -> None:
    """`eval run --workers 2` with the tiers in process: two processes, each with its own models on one of the two
    llama.cpp threads, write the records of one process answering one item at a time, every computed field equal
    (texts, routes, sources, token probabilities, features, confidences, tokens and FLOPs), with
    ``llama.reuse_prompts`` off. llama.cpp's numbers do not depend on its thread count (docs/BENCHMARKS.md); with
    prompts reused, what a context held from earlier items, which differs between the two orders, moves token
    probabilities in the third decimal and the evaluated prompt tokens."""
    runs = run_with_workers(tmp_path, (1, 2), settings={"ASSISTANT_LLAMA__REUSE_PROMPTS": "false"})
    assert runs[2]["meta"]["worker_processes"] is True and runs[1]["meta"]["worker_processes"] is False
    assert runs[1]["meta"]["settings"]["llama"]["reuse_prompts"] is False
    for name, records in runs[1]["systems"].items():
        assert set(records) == {item["id"] for item in QUESTIONS}, name
        for item_id, record in records.items():
            other = runs[2]["systems"][name][item_id]
            assert _answer_of(other) == _answer_of(record), (name, item_id)
            assert _computed(other) == _computed(record), (name, item_id)
    assert "Answered 2 items at a time** (`--workers`, in as many processes" in (tmp_path / "out-2" / "report.md"
                                                                                ).read_text()


@pytest.mark.slow
def test_eval_run_on_a_user_file_with_the_real_models(tmp_path: Path) -> None:
    questions, corpus, output = tmp_path / "questions.jsonl", tmp_path / "corpus.jsonl", tmp_path / "out"
    questions.write_text("\n".join(json.dumps(item) for item in QUESTIONS) + "\n")
    corpus.write_text("\n".join(json.dumps(item) for item in CORPUS) + "\n")
    command = [sys.executable, "-m", "assistant.cli", "eval", "run", "--suite", str(questions), "--corpus",
               str(corpus), "--systems", "routed,large-only,oracle", "--output", str(output)]
    environment = _default_settings_environment()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=environment, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "routed-no-escalation: 4 answered" in done.stdout or "from the cache" in done.stdout
    results = load_results(output)
    summaries = results["summaries"]
    assert set(summaries) == {"routed-no-escalation", "large-pipeline", "large-only", "routed", "oracle"}
    pipeline = results["systems"]["routed-no-escalation"]
    # the calculator answers plain arithmetic exactly with no model; the fact comes from the user's corpus
    assert pipeline["mul"]["correct"] == 1.0 and pipeline["mul"]["usage"] == []
    assert pipeline["capital"]["route"] == "FACT" and pipeline["capital"]["correct"] == 1.0
    assert pipeline["capital"]["sources"][0]["doc_id"] == "freedonia"
    assert pipeline["haiku"]["route"] == "CHAT" and pipeline["haiku"]["correct"] is None
    assert summaries["large-only"]["tokens"]["large"]["calls"] == 4
    # plain arithmetic costs the routed system nothing; the baseline pays a model call for it
    by_kind = {name: summaries[name]["by_kind"] for name in ("routed", "large-only")}
    assert by_kind["routed"]["arithmetic"]["flops"] == 0 < by_kind["large-only"]["arithmetic"]["flops"]
    assert summaries["routed"]["flops"] == pytest.approx(sum(kind["flops"] for kind in by_kind["routed"].values()))
    assert {"report.md", "cost_quality.png"} <= {path.name for path in output.iterdir()}
    # energy per answer, measured around every item, and the report names where the figure comes from
    assert all(record["energy_joules"] > 0 and record["energy_source"].startswith("codecarbon")
               for record in pipeline.values())
    assert "Energy source: codecarbon" in (output / "report.md").read_text()
    # a second run answers nothing again: every item comes from the cache
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 answered, 4 from the cache" in again.stdout


@pytest.mark.slow
def test_eval_run_on_the_out_of_domain_suite_uses_its_own_corpus(tmp_path: Path) -> None:
    output = tmp_path / "out"
    command = [sys.executable, "-m", "assistant.cli", "eval", "run", "--suite", "ood-hotpotqa", "--limit", "5",
               "--systems", "routed,large-only", "--output", str(output)]
    environment = _default_settings_environment()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=environment, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = load_results(output)
    assert results["meta"]["split"] == "test" and results["meta"]["corpus"] == "hotpotqa-ood"
    assert len(results["items"]) == 5 and all(item["split"] == "test" for item in results["items"].values())
    pipeline = results["systems"]["routed-no-escalation"]
    cited = [source["doc_id"] for record in pipeline.values() for source in record["sources"]]
    # answered over the questions' own HotpotQA paragraphs only, never the user's index
    assert cited and all(doc_id.startswith("hotpotqa/") for doc_id in cited)
    assert all(summary["accuracy_ci"]["n"] == 5 for name, summary in results["summaries"].items()
               if name in ("routed", "large-only"))
    assert results["meta"]["git"].get("commit") and results["meta"]["models"]["large"]["sha256"]
    assert "Paired comparisons" in (output / "report.md").read_text()
