"""The one escalation policy (assistant/core/decision.py): its table, and the eval's composed routed system equal to
the live graph item for item on a suite holding every route and stage (fake models)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.core.assistant import Assistant
from assistant.core.decision import CostBudget, Decision, DecisionInputs, Stage, Thresholds, decide
from assistant.core.escalation import EscalationModel, LogisticModel
from assistant.core.prompts import FACT_SYSTEM, GENERAL_SYSTEM, NOT_IN_DOCUMENTS, WORKING_SYSTEM
from assistant.core.routing import RouteDecision
from assistant.core.settings import Settings
from eval.results import recomposed
from eval.run import run_eval
from eval.sweep import recorded_inputs, replay, routed_records
from eval.systems import DirectSystem, PipelineSystem, System
from models.base import Message
from models.fake import FakeChatModel
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever

THRESHOLDS = Thresholds(0.5, 0.3)


def _inputs(stage: Stage, mode: str = "auto", confidence: float | None = None, route: str = "FACT",
            start_tier: str = "large", cost: CostBudget | None = None) -> DecisionInputs:
    return DecisionInputs(route=route, stage=stage, mode=mode, thresholds=THRESHOLDS,  # type: ignore[arg-type]
                          confidence=confidence, start_tier=start_tier, cost=cost or CostBudget())  # type: ignore[arg-type]


CAPPED = CostBudget(spent_usd=0.00001, estimate_usd=0.00002, cap_usd=0.00002)


@pytest.mark.parametrize(("inputs", "large", "says"), [
    (_inputs("calculator", "always"), False, "exact"),
    (_inputs("refusal", "always"), False, "no model answers"),
    (_inputs("start", route="MATH"), True, "4-12%"),
    (_inputs("start"), True, "general knowledge"),
    (_inputs("start", "never"), False, "disabled"),
    (_inputs("start", start_tier="small"), False, "configured"),
    (_inputs("start", "always", start_tier="small", cost=CAPPED), True, "forced"),
    (_inputs("start", cost=CAPPED), False, "cost cap"),
    (_inputs("draft", confidence=0.49), True, "0.49 < threshold 0.50"),
    (_inputs("draft", confidence=0.5), False, ">= threshold"),
    (_inputs("draft", confidence=0.35, route="CHAT"), False, ">= threshold 0.30"),  # CHAT: its own threshold
    (_inputs("draft", confidence=0.29, route="CHAT"), True, "< threshold 0.30"),
    (_inputs("draft", "never", confidence=0.0), False, "disabled"),
    (_inputs("draft", "always", confidence=1.0), True, "forced"),
    (_inputs("draft", confidence=0.1, cost=CAPPED), False, "cost cap"),
    (_inputs("draft", confidence=0.1, cost=CostBudget(0.0, 0.00002, 0.00002)), True, "< threshold"),  # just fits
])
def test_the_policy_table(inputs: DecisionInputs, large: bool, says: str) -> None:
    decision = decide(inputs)
    assert decision.large is large and says in decision.reason and decision.inputs == inputs


def test_a_decision_survives_its_json_and_replays_under_other_knobs() -> None:
    decision = decide(_inputs("draft", "never", confidence=0.2, cost=CAPPED))
    again = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert again == decision and not again.large
    assert decide(again.inputs.under("auto", THRESHOLDS)).large  # no cap, auto: 0.2 < 0.5


# ---- composed routed == live routed ---------------------------------------------------------------------------

SUPER_BOWL = Document("sb50.txt", "Super Bowl 50 was an American football game. The Denver Broncos defeated the "
                      "Carolina Panthers 24-10 at Levi's Stadium.", "Super Bowl 50")
SUITE = [  # (id, question, route, kind, answers)
    ("fact", "Which team won Super Bowl 50?", "FACT", "fact", ["Denver Broncos"]),
    ("fact-escalated", "Which team lost Super Bowl 50?", "FACT", "fact", ["Carolina Panthers"]),
    ("flagged-about-documents", "How many tickets were sold for Super Bowl 50 at Levi's Stadium?", "FACT", "fact",
     ["unanswerable"]),
    ("general-knowledge", "How many moons does Mars have?", "FACT", "fact", ["two"]),
    ("arithmetic", "What is 347 * 29?", "MATH", "arithmetic", ["10063"]),
    ("word-problem", "Tom has 5 apples and buys 3 more. How many apples does he have now?", "MATH", "word_problem",
     ["8"]),
    ("chat", "Write a friendly greeting for a new colleague.", "CHAT", "chat", []),
    ("chat-escalated", "Write a haiku about the sea.", "CHAT", "chat", []),
]


class SuiteRouter:
    """Routes the suite's questions as labelled."""

    def route(self, question: str, previous: str | None = None) -> RouteDecision:
        route = next(item[2] for item in SUITE if item[1] == question)
        if "*" in question:
            return RouteDecision("MATH", "calculator", "plain arithmetic", expression="347 * 29")
        return RouteDecision(route, "exemplars", "test")  # type: ignore[arg-type]


def _working(full: str, messages: Sequence[Message]) -> str:
    """The rest of a scripted working after what the conversation's last (assistant) message already holds."""
    written = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
    return full[len(written):] if full.startswith(written) else ""


def _question(messages: Sequence[Message]) -> str:
    return next(message["content"] for message in reversed(messages) if message["role"] == "user")


def _small(messages: Sequence[Message]) -> str:
    system, question = messages[0]["content"], _question(messages)
    if system == FACT_SYSTEM:
        return "Denver Broncos [sb50.txt#0]" if "won" in question else "Seattle Seahawks"
    if system == WORKING_SYSTEM:
        return _working("5 - 3 = 2. Answer: 2", messages)
    if system == GENERAL_SYSTEM:
        return "Three"
    return "" if "haiku" in question else "Hi, welcome!"  # an empty answer scores 0 and escalates


def _large(messages: Sequence[Message]) -> str:
    system, question = messages[0]["content"], _question(messages)
    if system == FACT_SYSTEM:
        return "Denver Broncos [sb50.txt#0]" if "won" in question else "Carolina Panthers [sb50.txt#0]"
    if system == WORKING_SYSTEM:
        return _working("5 + 3 = 8. Answer: 8", messages)
    if system == GENERAL_SYSTEM:
        return "Two"
    return "Waves fold on the shore" if "haiku" in question else "Welcome aboard!"


def _models() -> tuple[FakeChatModel, FakeChatModel]:
    # p=0.6 per token: a supported answer clears the 0.5 threshold, an unsupported one does not
    return (FakeChatModel(name="small", parameters=630_000_000, price_per_million_tokens=0.05, responder=_small,
                          default_probability=0.6),
            FakeChatModel(name="large", parameters=1_777_000_000, price_per_million_tokens=0.15, responder=_large))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # "how many" questions are flagged as not answered by the documents; everything else is
    answerable = LogisticModel(("wh_how_many",), (0.5,), (0.5,), (-8.0,), 0.0)
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps(EscalationModel({"answerable": answerable}, {"note": "test"}).to_dict()))
    return Settings.load(None, {
        "cache_dir": str(tmp_path / "cache"),
        "assistant": {"threshold": 0.5, "escalation_model": str(weights), "documents_dense": 1.0},
        "retrieval": {"embedder": "fake", "knowledge_base": "none"}})


@pytest.mark.parametrize("recorded_chat_start", ["large", "small"])
def test_the_composed_routed_system_is_the_live_graph_on_every_route_and_stage(settings: Settings, tmp_path: Path,
                                                                               recorded_chat_start: str) -> None:
    """Composed from the runs = the live graph (chat starting on the large model, the default); runs made while chat
    drafted on the small model (no start decision recorded) compose the same once recomposed with chat starting on
    the large one (``eval report --chat-start large``)."""
    live_settings = settings
    settings = settings.model_copy(update={"assistant": settings.assistant.model_copy(
        update={"chat_start": recorded_chat_start})})
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
    retriever.add_documents([SUPER_BOWL], progress=False)
    small, large = _models()

    def assistant(small: FakeChatModel, large: FakeChatModel) -> Assistant:
        return Assistant(small, large, SuiteRouter(), retriever, settings, tmp_path / "threads.sqlite")  # type: ignore[arg-type]

    def build(name: str) -> System:
        if name == "routed-no-escalation":
            return PipelineSystem(name, ("small", "large"), assistant(small, large), settings)
        if name == "large-pipeline":
            return PipelineSystem(name, ("large", "large"), assistant(large, large), settings)
        return DirectSystem(name, "large", large, settings)

    suite = tmp_path / "suite.jsonl"
    suite.write_text("\n".join(json.dumps({"id": item, "question": question, "kind": kind, "answers": answers})
                               for item, question, _, kind, answers in SUITE) + "\n", encoding="utf-8")
    outcome = run_eval(settings, suite=str(suite), systems=["routed"], limit=None, output=tmp_path / "out",
                       progress=False, build=build)
    results = outcome.results
    if recorded_chat_start == "small":
        assert "start" not in {item["inputs"]["stage"]
                               for item in results["runs"]["routed-no-escalation"]["chat"]["decisions"]}
        results = recomposed(results, tmp_path / "out", chat_start="large")
    composed = results["systems"]["routed"]
    live = Assistant(*_models(), SuiteRouter(), retriever, live_settings,  # type: ignore[arg-type]
                     tmp_path / "live.sqlite")
    seen = set()
    for item, question, *_ in SUITE:
        answer = live.ask(question)
        record = composed[item]
        assert record["text"] == answer.text, item
        assert record["escalated"] == answer.escalated, item
        assert [usage["tier"] for usage in record["usage"]] == [usage.tier for usage in answer.usage], item
        assert _without_estimate(record["decisions"], recorded_chat_start) == _without_estimate(
            [decision.to_dict() for decision in answer.decisions], recorded_chat_start), item
        seen |= {(decision.inputs.stage, decision.large) for decision in answer.decisions}
    # every stage of the policy, each way it can go where it can, was exercised
    assert seen >= {("calculator", False), ("refusal", False), ("start", True), ("draft", False), ("draft", True)}
    assert composed["flagged-about-documents"]["text"] == NOT_IN_DOCUMENTS
    assert composed["general-knowledge"]["text"].endswith("Two")  # the large model answers public questions
    assert composed["word-problem"]["text"] == "8 apples" and composed["chat-escalated"]["escalated"]
    # routed-no-escalation really used no large model: its word problem and public question are the small one's
    weak = outcome.results["runs"]["routed-no-escalation"]
    assert all(usage["tier"] == "small" for record in weak.values() for usage in record["usage"])
    assert weak["word-problem"]["text"] == "2 apples" and weak["general-knowledge"]["text"].endswith("Three")


def _without_estimate(decisions: list[dict[str, Any]], recorded_chat_start: str) -> list[dict[str, Any]]:
    """Decisions as compared: a start decision recomposed for a run that drafted chat on the small model estimates
    the large call from the draft's real prompt, the live graph from the characters (only a cost cap reads it)."""
    if recorded_chat_start == "large":
        return decisions
    return [item | {"inputs": item["inputs"] | {"cost": item["inputs"]["cost"] | {"estimate_usd": None}}}
            for item in decisions]


def test_results_written_before_decisions_were_recorded_still_compose() -> None:
    """Committed results files hold ``can_escalate`` instead of decisions; they re-render as before."""
    weak = {"a": {"route": "FACT", "confidence": 0.2, "can_escalate": True, "text": "small", "usage": []},
            "b": {"route": "MATH", "confidence": 1.0, "can_escalate": False, "text": "4", "usage": []}}
    strong = {"a": {"text": "large", "usage": [{"step": "answer", "tier": "large"}], "correct": 1.0},
              "b": {"text": "4", "usage": []}}
    assert [inputs.stage for inputs in recorded_inputs(weak["a"])] == ["draft"] and not recorded_inputs(weak["b"])
    composed = routed_records(weak, strong, 0.5)
    assert composed["a"]["text"] == "large" and composed["a"]["escalated"] and composed["b"]["text"] == "4"
    assert replay(recorded_inputs(weak["a"]), Thresholds(0.1, 0.1)).outcome == "small"
