"""The assistant on the real models, a real MiniLM index of the SQuAD v2.0 dev paragraphs, and the calculator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from assistant.api import Assistant
from assistant.core.settings import Settings
from common.energy import EnergyMeter

# Floors a little under the measured routing accuracy (bench/bench_router.py, docs/BENCHMARKS.md).
OXYGEN_QUESTION = "Of what group in the periodic table is oxygen a member?"  # a dev-split article
ROUTING_FLOORS = {"routing-dev": 0.87, "routing-test": 0.87}  # measured 0.886 and 0.884


@pytest.fixture(scope="module")
def assistant(real_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    from eval.run import squad_index_settings

    settings = squad_index_settings(real_settings, progress=False).model_copy(deep=True)
    settings.assistant.checkpoint_path = tmp_path_factory.mktemp("threads") / "threads.sqlite"
    instance = Assistant.from_settings(settings, progress=False)
    yield instance  # type: ignore[misc]
    instance.close()


def test_plain_arithmetic_needs_no_language_model(assistant: Assistant) -> None:
    answer = assistant.ask("What is 347 * 29?")
    assert answer.text == "10063" and answer.route == "MATH" and answer.route_stage == "calculator"
    assert answer.usage == [] and answer.cost.to_dict()["total"]["flops"] == 0


def test_each_answer_carries_its_speed_and_an_energy_estimate_codecarbon_agrees_with(assistant: Assistant) -> None:
    """The per-answer estimate (codecarbon's load model on the turn's CPU and wall time) against codecarbon itself
    measuring the same turn as a task, the way the evaluation measures every item."""
    if assistant.power is None and Path("/sys/class/powercap/intel-rapl").exists():
        pytest.skip("codecarbon reads RAPL counters here, so no load model is applied per answer")
    assert assistant.power is not None and assistant.power.source.startswith("estimate: codecarbon")
    measured: dict[str, Any] = {}
    with EnergyMeter() as meter, meter.measure(measured):
        answer = assistant.ask("Write one sentence about the sea.", escalation="never")
    total = answer.cost.to_dict()["total"]
    assert answer.route == "CHAT" and total["completion_tokens"] > 3
    assert total["tokens_per_second"] == pytest.approx(total["completion_tokens"] / total["wall_seconds"], rel=0.01)
    assert total["energy_joules"] == pytest.approx(measured["energy_joules"], rel=0.1), measured
    assert total["energy_source"] == assistant.power.source


def test_factual_question_is_answered_from_the_right_chunk(assistant: Assistant) -> None:
    answer = assistant.ask(OXYGEN_QUESTION, escalation="never")
    assert answer.route == "FACT"
    assert "chalcogen" in answer.text.lower(), answer.text
    assert "squad-dev/07/000#0" in [source.chunk_id for source in answer.used_sources]
    assert answer.usage and answer.usage[0].tier == "small"


def test_a_question_the_documents_do_not_answer_is_labelled_and_cites_nothing(assistant: Assistant) -> None:
    # (The issue's own example, "Who is the current president of France?", still passes as answerable, 0.73: a
    # passage on the President of the European Commission matches it; see docs/BENCHMARKS.md.)
    answer = assistant.ask("Who wrote the novel Moby-Dick?")  # about the public world: the large model knows it
    assert answer.route == "FACT" and answer.general_knowledge, (answer.text, answer.answerable)
    assert answer.text.startswith("Not in your documents; from general knowledge:") and not answer.used_sources
    assert "melville" in answer.text.lower() and answer.usage[-1].tier == "large"
    assert "[" not in answer.text and answer.answerable is not None and answer.answerable < 0.6
    # without the large model, the small one's closed-book answer is not trusted (#31): the plain refusal
    unsure = assistant.ask("Who wrote the novel Moby-Dick?", escalation="never")
    assert unsure.text == "I could not find this in your documents." or unsure.general_knowledge, unsure.text
    supported = assistant.ask(OXYGEN_QUESTION, escalation="never")
    assert not supported.general_knowledge and supported.answerable is not None and supported.answerable >= 0.6
    assert 0.0 < supported.confidence < 1.0 and supported.signals["p_correct"] == supported.confidence
    marker = re.search(r"\[(\d)\]$", supported.text)
    assert marker, supported.text
    assert supported.sources[int(marker.group(1)) - 1].chunk_id == "squad-dev/07/000#0"


# Invented for these tests (not from any dataset): the answer with the unit the question implies.
WORD_PROBLEMS = [
    ("A baker bakes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them. "
     "How many muffins does she have left?", "12 muffins"),
    ("Maya buys 3 notebooks at $4 each and a pen for $2. How much money does she spend?", "$14"),
    ("A garden has 6 rows of 8 tulips. A storm breaks 5 of them. How many tulips are still standing?", "43 tulips"),
]


@pytest.mark.parametrize(("question", "expected"), WORD_PROBLEMS)
def test_a_word_problem_is_worked_with_the_calculator_and_the_working_streams_first(
        assistant: Assistant, question: str, expected: str) -> None:
    events = list(assistant.stream(question, persist=False))
    answer = events[-1]["answer"]
    assert answer.route == "MATH" and answer.text == expected, (answer.text, answer.working)
    assert answer.calculation is not None and answer.calculation["checked"], answer.working
    assert answer.calculation["results"] and answer.calculation["results"][-1]["exact"] in answer.working
    kinds = [event["type"] for event in events]
    assert "working" in kinds and kinds.index("working") < kinds.index("answer")
    assert "".join(event["text"] for event in events if event["type"] == "working").strip() == answer.working


@pytest.mark.parametrize(("question", "knobs"), [
    ("Write one sentence about the sea.", {"escalation": "always"}),
    # a learned probability is never 1, so threshold 1 escalates every FACT turn
    (OXYGEN_QUESTION, {"threshold": 1.0})])
def test_forced_escalation_reaches_the_large_model(assistant: Assistant, question: str,
                                                  knobs: dict[str, Any]) -> None:
    answer = assistant.ask(question, **knobs)
    assert answer.escalated
    assert [item.tier for item in answer.usage][-1] == "large"
    assert answer.text


def test_as_tool_inside_a_real_langgraph_agent_node(assistant: Assistant) -> None:
    tool = assistant.as_tool()

    class AgentState(TypedDict):
        question: str
        observation: str

    def call_tool(state: AgentState) -> dict[str, str]:
        return {"observation": tool(question=state["question"])}

    graph = StateGraph(AgentState)
    graph.add_node("tool", call_tool)
    graph.add_edge(START, "tool")
    graph.add_edge("tool", END)
    result = graph.compile().invoke({"question": "What is 12 times 12?", "observation": ""})
    assert re.fullmatch(r"144", result["observation"])


def test_thread_memory_with_real_models(assistant: Assistant, tmp_path: Path) -> None:
    assistant.ask("Hello! My favourite colour is green.", thread_id="real-thread", escalation="never")
    history = assistant.history("real-thread")
    assert history[0]["content"] == "Hello! My favourite colour is green." and len(history) == 2
    # Alone this reads as a factual question; in the thread it follows a chat turn and stays in the chat.
    follow_up = "Which colour did I say?"
    assert assistant.router.route(follow_up).route == "FACT"
    answer = assistant.ask(follow_up, thread_id="real-thread", escalation="never")
    assert answer.route == "CHAT" and len(assistant.history("real-thread")) == 4


def test_cli_ask_json(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, ASSISTANT_ASSISTANT__CHECKPOINT_PATH=str(tmp_path / "threads.sqlite"))
    command = [str(Path(sys.executable).with_name("assistant")), "ask", "What is 15% of 240?", "--json"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["text"] == "36" and data["route"] == "MATH" and data["cost"]["total"]["calls"] == 0
    plain = subprocess.run(command[:-1], capture_output=True, text=True, timeout=300, env=env)
    assert plain.stdout.splitlines()[0] == "36" and "MATH via calculator" in plain.stdout


@pytest.mark.parametrize(("which", "floor"), [("routing-dev", ROUTING_FLOORS["routing-dev"]),
                                              ("routing-test", ROUTING_FLOORS["routing-test"])])
def test_routing_accuracy_does_not_regress(assistant: Assistant, real_settings: Settings, which: str,
                                           floor: float) -> None:
    from collections import Counter

    from eval.datasets import expected_route, thread_first_turns
    from eval.suites import suite_loaders

    items = suite_loaders(real_settings.dataset_store(), progress=False)[which]().items
    # MT-bench follow-ups (routing-dev) are routed as in a thread: after their first turn, as the graph does.
    first_turns = thread_first_turns(real_settings.dataset_store(), progress=False)
    outcome: Counter[bool] = Counter()
    for item in items:
        previous = assistant.router.route(first_turns[item.id]).route if item.id in first_turns else None
        outcome[assistant.router.route(item.question, previous).route == expected_route(item)] += 1
    accuracy = outcome[True] / sum(outcome.values())
    assert accuracy >= floor, accuracy  # measured figures: docs/BENCHMARKS.md (bench/bench_router.py)
