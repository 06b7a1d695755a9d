"""Word problems worked in prose with the calculator writing every result (assistant.core.working), on a fake model."""

from __future__ import annotations

from fractions import Fraction

import pytest

from assistant.core.working import Unit, calculator_value, final_value, format_answer, implied_unit, work
from models.fake import FakeChatModel
from tools.calculator import calculate


def _worked(*pieces: str, question: str = "How many apples are there?") -> tuple[object, list[str], FakeChatModel]:
    model = FakeChatModel(name="large").enqueue(*pieces)
    shown: list[str] = []
    return work(model, question, calculate, max_tokens=256, emit=shown.append), shown, model


def test_generation_stops_at_each_equals_sign_and_the_calculator_writes_the_result() -> None:
    done, shown, model = _worked("Each box holds 12 * 3 = 36 apples", " apples in the boxes.\nWith 4 more: 36 + 4 = 40",
                                 " apples.\nAnswer: 40")
    assert done.text == "Each box holds 12 * 3 = 36 apples in the boxes.\nWith 4 more: 36 + 4 = 40 apples.\nAnswer: 40"
    assert [result.exact for result in done.results] == ["36", "40"]
    assert (done.value, done.checked) == (Fraction(40), True)
    assert "".join(shown) == done.text  # what streamed is the working as kept
    assert [call.stop for call in model.calls] == [["="]] * 3
    # every call after the first continues the assistant's own message, the calculator's value at its end
    assert model.calls[1].messages[-1] == {"role": "assistant", "content": "Each box holds 12 * 3 = 36"}
    assert model.calls[2].messages[-1]["content"].endswith("36 + 4 = 40")


def test_a_wrong_result_the_model_meant_to_write_is_replaced_by_the_calculators() -> None:
    done, _, _ = _worked("Three bags of 4: 3 * 4 = 13", " apples.\nAnswer: 12")
    assert "3 * 4 = 12" in done.text and "13" not in done.text
    assert (done.value, done.checked) == (Fraction(12), True)


def test_a_malformed_or_impossible_annotation_gets_no_value_and_generation_goes_on() -> None:
    done, _, _ = _worked("Per person: 5 / 0 = 7", " 7 each.\nTotal = 2", " 2 + * 3 = 9", " 9\nAnswer: 9")
    assert done.results == []  # neither 5 / 0 nor "2 + * 3" is arithmetic the calculator accepts
    assert done.text.count("=") == 3
    assert (done.value, done.checked) == (Fraction(9), False)  # the model's own number: not checked


def test_a_working_that_runs_out_of_tokens_is_marked_and_keeps_what_the_calculator_wrote() -> None:
    model = FakeChatModel(name="large").enqueue("2 * 3 = 6", " and then " + "more " * 300)
    done = work(model, "How many?", calculate, max_tokens=40, emit=lambda text: None)
    assert done.finish_reason == "length"
    assert (done.value, done.checked) == (Fraction(6), True)  # no Answer line: the last calculator result


def test_the_answer_line_may_hold_arithmetic_which_the_calculator_evaluates() -> None:
    assert final_value("so\nAnswer: 3 * 14", [], calculate) == (Fraction(42), True)
    assert final_value("Answer: $1,250.50.", [calculate("2501/2")], calculate) == (Fraction(2501, 2), True)
    assert final_value("no number at all", [], calculate) == (None, False)
    assert final_value("cut short after 12 and then 14", [], calculate) == (Fraction(14), False)


def test_only_the_arithmetic_just_before_the_sign_reaches_the_calculator() -> None:
    value = calculator_value("She pays $12 x 3", calculate)
    assert value is not None and value.exact == "36"
    assert calculator_value("Total apples", calculate) is None
    assert calculator_value("There are 12", calculate) is None  # a number alone is not a calculation
    assert calculator_value("__import__('os').system('id') or 1 + 1", calculate) is not None  # only "1 + 1"


@pytest.mark.parametrize(("question", "unit"), [
    ("How much money did she spend on apples?", Unit(prefix="$")),
    ("Each costs $3. How much does he pay for 9?", Unit(prefix="$")),
    ("What percent of the class passed?", Unit(suffix="%")),
    ("How many more apples does Tom have than Ann?", Unit(suffix=" apples")),
    ("How many hours of sleep does he get in a week?", Unit(suffix=" hours")),
    ("How many does she have left?", Unit()),
    ("How many peanut butter cookies did Ann bake?", Unit(suffix=" peanut butter cookies")),
    ("How many dozens of eggs does he need?", Unit(suffix=" dozens")),
    ("How long did the trip take?", Unit()),
])
def test_the_unit_is_the_one_the_question_implies(question: str, unit: Unit) -> None:
    assert implied_unit(question) == unit


@pytest.mark.parametrize(("value", "unit", "shown"), [
    (Fraction(27), Unit(prefix="$"), "$27"),
    (Fraction(2501, 2), Unit(prefix="$"), "$1,250.50"),
    (Fraction(-4), Unit(prefix="$"), "-$4"),
    (Fraction(1), Unit(suffix=" apples"), "1 apple"),
    (Fraction(25, 2), Unit(suffix="%"), "12.5%"),
    (Fraction(1, 3), Unit(), "0.3333"),
    (Fraction(1200), Unit(suffix=" hours"), "1,200 hours"),
])
def test_answers_are_written_as_people_expect(value: Fraction, unit: Unit, shown: str) -> None:
    assert format_answer(value, unit) == shown


@pytest.mark.parametrize(("line", "value"), [
    ("20 students (not in the team) - 13 choir members ", "7"),
    ("5 calories per cup * 14 cups ", "70"),
    (r"\(\frac{1}{2} \times \frac{1}{2} ", "1/4"),
    ("65% of 20 students ", "13"),
    ("Remaining = $1,790,000 - $47,400 ", "1742600"),
    ("- 3 * 4 ", "12"),  # a bullet, not a minus sign
    ("x = -5 + 3 ", "-2"),
    ("Step 1 - compute 3 * 4 ", "12"),  # an operator followed by a word joins nothing
    ("In 2 weeks she reads 3 * 7 pages ", "21"),  # juxtaposed numbers are never a product
])
def test_arithmetic_is_read_as_models_write_it(line: str, value: str) -> None:
    result = calculator_value(line, calculate)
    assert result is not None and result.exact == value


def test_a_name_set_to_arithmetic_and_then_restated_gets_the_calculators_value() -> None:
    done, _, _ = _worked("Remaining amount = $", " $790000 - $47400\nRemaining amount = 742000",
                         " dollars\nAnswer: 742600", question="How much money is left?")
    assert "Remaining amount = $742600 dollars" in done.text
    assert (done.value, done.checked) == (Fraction(742600), True)


def test_a_value_is_written_with_the_money_sign_its_arithmetic_had() -> None:
    done, _, _ = _worked("Left: $580 - $290 = 290", "\nAnswer: 290", question="How much money is left?")
    assert done.text == "Left: $580 - $290 = $290\nAnswer: 290"
