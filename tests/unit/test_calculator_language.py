"""The calculator's language: normalised text, equations, errors that say what was wrong, plain language."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main
from tools import (
    CalcParseError,
    CalculatorError,
    MathDomainError,
    UnsupportedConstructError,
    calculate,
    extract_expression,
)
from tools.parsing import parse


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("2^10", "2 ** 10"),
        ("15% of 240", "15 / 100 * 240"),
        ("240 + 15%", "240 * (1 + 15 / 100)"),
        ("(1+2)(3+4)", "(1 + 2) * (3 + 4)"),
        ("5!", "factorial(5)"),
        ("sqrt 144", "sqrt(144)"),
        ("-2^2", "-2 ** 2"),
        ("(-2)^2", "(-2) ** 2"),
        ("2^-1", "2 ** -1"),
        ("(2^3)^2", "(2 ** 3) ** 2"),
        ("10 - (4 - 3)", "10 - (4 - 3)"),
        ("ARCSIN(1)", "asin(1)"),
        ("solve 2x + 3 = 7", "solve 2 * x + 3 = 7"),
    ],
)
def test_normalised_text_reparses_to_the_same_tree(text: str, normalised: str) -> None:
    parsed = parse(text)
    assert parsed.text == normalised
    assert parse(parsed.text) == parsed


@pytest.mark.parametrize(
    ("equation", "exact", "solutions"),
    [
        ("solve 2x + 3 = 7", "x = 2", ["2"]),
        ("solve x^2 = 4", "x = -2 or x = 2", ["-2", "2"]),
        ("solve: 3y - 1 = 2y + 4", "y = 5", ["5"]),
        ("x/4 = 2.5", "x = 10", ["10"]),
        ("solve 2(x + 1) = 2x + 2", "every value of x is a solution", []),
        ("solve x + 1 = x", "no solution", []),
    ],
)
def test_equations_in_one_unknown(equation: str, exact: str, solutions: list[str]) -> None:
    result = calculate(equation)
    assert result.exact == exact
    assert list(result.solutions) == solutions
    assert result.evaluated_in == "worker"


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", CalcParseError, "empty"),
        ("2 +", CalcParseError, "well-formed"),
        ("(1 + 2", CalcParseError, "well-formed"),
        ("2 3", CalcParseError, "two numbers in a row"),
        ("sqrt(1, 2)", CalcParseError, "sqrt\\(\\) takes 1 argument"),
        ("foo(2)", UnsupportedConstructError, "unknown name 'foo'; did you mean 'floor'"),
        ("sqroot(4)", UnsupportedConstructError, "did you mean 'sqrt'"),
        ("x + 1", UnsupportedConstructError, "unknown name 'x'"),
        ("solve x + y = 1", UnsupportedConstructError, "exactly one unknown"),
        ("solve 2 + 2", CalcParseError, "needs an equation"),
        ("1 = 2 = 3", CalcParseError, "exactly one '='"),
        ("'2'", UnsupportedConstructError, "strings"),
        ("a.b", UnsupportedConstructError, "attribute"),
        ("of 5", UnsupportedConstructError, "'of' is only understood"),
        ("1/0", MathDomainError, "division by zero"),
        ("5 // 0", MathDomainError, "division by zero"),
        ("5 % 0", MathDomainError, "division by zero"),
        ("0 ** -1", MathDomainError, "division by zero"),
        ("log(0)", MathDomainError, "log\\(0\\)"),
        ("log(5, 1)", MathDomainError, "base"),
        ("tan(pi/2)", MathDomainError, "undefined"),
        ("factorial(-1)", MathDomainError, ">= 0"),
        ("factorial(2.5)", MathDomainError, "whole numbers"),
        ("gcd(1.5, 3)", MathDomainError, "whole numbers"),
        ("max(sqrt(-1), 1)", MathDomainError, "real numbers"),
        ("2 ¤ 3", CalcParseError, "unexpected character"),
    ],
)
def test_errors_say_what_was_wrong(text: str, error: type[CalculatorError], message: str) -> None:
    with pytest.raises(error, match=message):
        calculate(text)


def test_results_render_exact_decimal_and_float() -> None:
    third = calculate("1/3")
    assert (third.exact, third.decimal, third.approx) == ("1/3", "0.333333333333333", pytest.approx(1 / 3))
    root = calculate("sqrt(2)")
    assert root.exact == "sqrt(2)" and root.decimal == "1.4142135623731"
    assert str(root) == "sqrt(2) ≈ 1.4142135623731"
    assert str(calculate("347 * 29")) == "10063"
    imaginary = calculate("sqrt(-4)")
    assert (imaginary.exact, imaginary.decimal, imaginary.approx) == ("2*I", "2*I", None)
    big = calculate("2 ** 10000")
    assert big.exact.startswith("19950631168807583848…") and big.exact.endswith("(3,011 digits)")
    assert big.decimal == "1.99506311688076e+3010" and big.approx is None
    assert json.loads(json.dumps(calculate("0.1 + 0.2").to_dict()))["exact"] == "3/10"


def test_small_inputs_stay_in_process_and_large_ones_go_to_the_worker() -> None:
    assert calculate("347 * 29").evaluated_in == "process"
    assert calculate("2 ** 10000").evaluated_in == "worker"


PLAIN_LANGUAGE = [
    ("What is 347 times 29?", "347 * 29", "10063"),
    ("what's 15% of 240", "15 / 100 * 240", "36"),
    ("square root of 144", "sqrt(144)", "12"),
    ("7 plus 8 divided by 2", "7 + 8 / 2", "11"),
    ("What is 697 times 205?", "697 * 205", "142885"),
    ("What is 82 plus 39?", "82 + 39", "121"),
    ("What is 5 minus 9?", "5 - 9", "-4"),
    ("What is 50 divided by 5?", "50 / 5", "10"),
    ("What is the square root of 144?", "sqrt(144)", "12"),
    ("How much is 3 x 4?", "3 * 4", "12"),
    ("Calculate 2^10", "2 ** 10", "1024"),
    ("What is 15 percent of 80?", "15 / 100 * 80", "12"),
    ("What is seven plus eight?", "7 + 8", "15"),
    ("What is one hundred twenty three times four?", "123 * 4", "492"),
    ("solve 2x + 3 = 7", "solve 2 * x + 3 = 7", "x = 2"),
    ("What is the sum of 12 and 30?", "12 + 30", "42"),
    ("subtract 5 from 20", "20 - 5", "15"),
    ("What is 10 squared?", "10 ** 2", "100"),
    ("what is 5 factorial?", "factorial(5)", "120"),
    ("what is 2 to the power of 10", "2 ** 10", "1024"),
    ("What is the remainder when 17 is divided by 5?", "17 % 5", "2"),
    ("Compute 1,234 * 5", "1234 * 5", "6170"),
    ("What is $20 times 3?", "20 * 3", "60"),
    ("What is 12 over 4?", "12 / 4", "3"),
    ("what is the log of 100", "log10(100)", "2"),
    ("What is 100 minus 20 percent?", "100 * (1 - 20 / 100)", "80"),
    ("What's 3.5 times 2?", "3.5 * 2", "7"),
    ("What does 6 times 7 equal?", "6 * 7", "42"),
    ("What is 1/3 + 1/6?", "1 / 3 + 1 / 6", "1/2"),
    ("Evaluate 2 * (3 + 4).", "2 * (3 + 4)", "14"),
    # a sign right after a function word belongs to its argument; "squared" applies to the signed number
    ("What is the square root of -4?", "sqrt(-4)", "2*I"),
    ("What is the square root of minus 9?", "sqrt(-9)", "3*I"),
    ("What is the cube root of -27?", "cbrt(-27)", "-3"),
    ("What is the absolute value of -7.5?", "abs(-7.5)", "15/2"),
    ("What is -4 squared?", "(-4) ** 2", "16"),
    ("What is negative 3 cubed?", "(-3) ** 3", "-27"),
    ("What is 10 minus -4?", "10 - -4", "14"),
    ("What is 3 - 4 squared?", "3 - 4 ** 2", "-13"),
    ("What is 2 * -3 squared?", "2 * (-3) ** 2", "18"),
]


@pytest.mark.parametrize(("question", "expression", "exact"), PLAIN_LANGUAGE, ids=[q for q, _, _ in PLAIN_LANGUAGE])
def test_plain_language_arithmetic_becomes_an_expression(question: str, expression: str, exact: str) -> None:
    assert extract_expression(question) == expression
    assert calculate(expression).exact == exact


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "If a shirt costs $20 and is 15% off, what is the price?",
        "What is 3 times the population of France?",
        "Which NFL team represented the AFC at Super Bowl 50?",
        "Who won the Super Bowl in 2016?",
        "What is 42?",
        "What is pi?",
        "hello",
        "Is 5 greater than 3?",
        "Write a poem about 2 cats",
        "What happened in 1066?",
        "Tom has 3 apples and eats 1. How many are left?",
        "",
        "x" * 600,
    ],
)
def test_anything_but_plain_arithmetic_gives_none(question: str) -> None:
    assert extract_expression(question) is None


def test_bigbench_style_questions_are_answered_exactly() -> None:
    pairs = [(a, b) for a in (697, 38, 5012, 99) for b in (205, 7, 1234, 0)]
    for a, b in pairs:
        assert calculate(extract_expression(f"What is {a} times {b}?") or "").exact == str(a * b)
        assert calculate(extract_expression(f"What is {a} plus {b}?") or "").exact == str(a + b)
        assert calculate(extract_expression(f"What is {a} minus {b}?") or "").exact == str(a - b)


def test_cli_calc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calc", "What is 347 times 29?"]) == 0
    assert capsys.readouterr().out.strip() == "347 * 29 = 10063"
    assert main(["calc", "sqrt(2)", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exact"] == "sqrt(2)" and data["approx"] == pytest.approx(2**0.5)
    assert main(["calc", "solve 2x + 3 = 7"]) == 0
    assert capsys.readouterr().out.strip() == "solve 2 * x + 3 = 7: x = 2"
    assert main(["calc", "__import__('os')"]) == 2
    assert "strings are not allowed" in capsys.readouterr().err
    assert main(["calc", "9**9**9", "--calculator-time-limit-s", "1"]) == 2
    assert "digits; the limit is" in capsys.readouterr().err
