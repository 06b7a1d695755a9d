"""Word-problem programs: parsing, substitution of earlier steps, and refusal of anything that is not a number."""

from __future__ import annotations

import json

import jsonschema
import pytest

from assistant.core.program import MAX_STEPS, PROGRAM_SCHEMA, ProgramError, evaluate_program, parse_program, substitute
from tests.programs import program_reply
from tools.calculator import calculate


def test_steps_run_in_order_with_the_exact_values_of_earlier_steps() -> None:
    text = program_reply(("thomas", "258"), ("linda", "24 + 50% * thomas"), ("total", "thomas + linda"))
    result = evaluate_program(text, calculate)
    assert result.exact == "411" and result.expression == "258 + 153"


def test_exact_fractions_are_carried_between_steps_without_rounding() -> None:
    result = evaluate_program(program_reply(("third", "1 / 3"), ("whole", "third * 3")), calculate)
    assert result.exact == "1"


def test_only_whole_names_of_earlier_steps_are_replaced() -> None:
    assert substitute("a + ab + a_b + b_a", {"a": "5"}) == "(5) + ab + a_b + b_a"
    assert substitute("2a", {"a": "5"}) == "2(5)"  # the calculator reads this as 2 * 5, as "2a" means
    assert substitute("later + 1", {}) == "later + 1"


@pytest.mark.parametrize("text", [
    "not json",
    json.dumps({"expression": "2 + 2"}),
    json.dumps({"steps": []}),
    json.dumps({"steps": [{"name": "x"}]}),
    json.dumps({"steps": "2 + 2"}),
    program_reply(*((f"s{index}", "1") for index in range(MAX_STEPS + 1))),
    program_reply(("Bad Name", "1")),
])
def test_malformed_programs_are_refused(text: str) -> None:
    with pytest.raises(ProgramError):
        evaluate_program(text, calculate)


@pytest.mark.parametrize("expression", [
    "apples + 1",                      # a name no earlier step defined: the calculator would answer "apples + 1"
    "x = 2",                           # an equation, not a quantity
    "__import__('os').system('id')",   # code is never evaluated
    "1 / 0",
])
def test_a_step_that_is_not_a_number_fails_the_program(expression: str) -> None:
    with pytest.raises(ProgramError, match="step 'answer'"):
        evaluate_program(program_reply(("answer", expression)), calculate)


def test_a_step_cannot_refer_to_a_later_step() -> None:
    with pytest.raises(ProgramError):
        evaluate_program(program_reply(("first", "second + 1"), ("second", "2")), calculate)


def test_the_schema_asks_for_the_name_before_the_expression() -> None:
    item = PROGRAM_SCHEMA["properties"]["steps"]["items"]
    assert list(item["properties"]) == ["name", "expression"] and item["required"] == ["name", "expression"]
    assert parse_program(program_reply(("a", "1"), ("b", "a + 1"))) == [("a", "1"), ("b", "a + 1")]


@pytest.mark.parametrize("steps", [(("a", "1"),), (("eggs_per_day", "16 - 3 - 4"), ("money", "eggs_per_day * 2")),
                                   tuple((f"step_{index}", f"{index} + 1") for index in range(MAX_STEPS))])
def test_the_schema_accepts_every_program_the_evaluator_runs(steps: tuple[tuple[str, str], ...]) -> None:
    text = program_reply(*steps)
    evaluate_program(text, calculate)
    jsonschema.validate(json.loads(text), PROGRAM_SCHEMA)


@pytest.mark.parametrize("reply", [
    "Tom has 3 boxes of 4 apples, so he has 12 apples.",  # prose
    {"answer": "12"},
    {"steps": []},
    {"steps": [{"name": "a", "expression": "1"}, {"name": "b"}]},  # a step without its expression
    {"steps": [{"name": "Apples", "expression": "2"}]},  # not a snake_case name, as the prompt asks
    {"steps": [{"name": "a", "expression": "1"}] * (MAX_STEPS + 1)},
])
def test_the_schema_refuses_what_is_not_a_program(reply: object) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(reply, PROGRAM_SCHEMA)
