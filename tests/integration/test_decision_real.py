"""The composed routed system equals the live graph item for item on the shipped models (the eval measures the
decision the product ships): a suite with a documents fact, a question the documents do not answer (about them, and
about the public world), plain arithmetic, a word problem and chat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.core.settings import Settings
from eval.run import corpus_settings, run_eval
from eval.systems import PipelineSystem, System, SystemFactory

POLICY = """# Tarnwick holiday policy

## Annual leave
A full-time employee gets 27 days of paid annual leave a year. Requests for more than 10 days in a row are approved
by Mirela Vasquez, the head of people.

## Public holidays
Founders' Day, on 14 September, is a paid holiday for everyone.
"""
QUESTIONS = [
    {"id": "fact", "question": "How many days of paid annual leave does a full-time Tarnwick employee get?",
     "answers": ["27 days"], "kind": "document"},
    {"id": "about-documents", "question": "How many parking spaces does the Tarnwick office have?",
     "answers": ["unanswerable"], "kind": "document"},
    {"id": "public", "question": "Who wrote the novel Pride and Prejudice?", "answers": ["Jane Austen"],
     "kind": "fact"},
    {"id": "arithmetic", "question": "What is 347 * 29?", "answers": ["10063"], "kind": "arithmetic"},
    {"id": "word-problem", "question": "Ana has 12 apples. She gives 5 apples to Ben and then buys 7 more apples. "
     "How many apples does Ana have now?", "answers": ["14"], "kind": "word_problem"},
    {"id": "chat", "question": "Write a haiku about autumn leaves.", "kind": "chat"},
]


@pytest.mark.slow
def test_composed_routed_equals_live_routed_on_the_shipped_models(real_settings: Settings, tmp_path: Path) -> None:
    corpus, suite = tmp_path / "tarnwick_policy.md", tmp_path / "suite.jsonl"
    corpus.write_text(POLICY, encoding="utf-8")
    suite.write_text("\n".join(json.dumps(item) for item in QUESTIONS) + "\n", encoding="utf-8")
    # Every prompt evaluated from an empty context: reusing the prefix the context holds from the model's previous
    # call splits prompt batches at other positions and gives slightly other logits; the eval (the small model's
    # word problem before the chat item) and the live run then wrote different haikus in CI, a near-tie at
    # temperature 0 flipped by what was answered before, not by any decision.
    from_scratch = real_settings.llama.model_copy(update={"reuse_prompts": False})
    settings = corpus_settings(real_settings.model_copy(update={"llama": from_scratch}), corpus,
                               progress=False)  # an index of the policy alone
    factory = SystemFactory(settings, tmp_path / "threads.sqlite", progress=False)
    built: dict[str, System] = {}

    def build(name: str) -> System:
        built[name] = factory.build(name)
        return built[name]

    outcome = run_eval(settings, suite=str(suite), systems=["routed"], limit=None, output=tmp_path / "out",
                       progress=False, build=build, energy=False)
    composed = outcome.results["systems"]["routed"]
    weak = built["routed-no-escalation"]
    assert isinstance(weak, PipelineSystem)
    live = weak.assistant  # the same models, router and index, asked as a user asks (escalation auto)
    stages = {}
    for item in QUESTIONS:
        answer = live.ask(str(item["question"]))
        record = composed[str(item["id"])]
        assert record["text"] == answer.text, item["id"]
        assert record["escalated"] == answer.escalated, item["id"]
        assert [usage["tier"] for usage in record["usage"]] == [usage.tier for usage in answer.usage], item["id"]
        assert record["decisions"] == [decision.to_dict() for decision in answer.decisions], item["id"]
        stages[str(item["id"])] = [(decision.inputs.stage, decision.large) for decision in answer.decisions]
    assert stages["arithmetic"] == [("calculator", False)]
    assert stages["word-problem"] == [("start", True)]
    assert stages["fact"][0][0] == "draft" and stages["chat"] == [("start", True)]  # chat starts on the large model
    assert stages["about-documents"] == [("refusal", False)], stages
    assert stages["public"] == [("start", True)], stages
