"""The calculator against Python's own exact arithmetic (fractions) and math module, never against SymPy."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from tools import calculate

# (input, exact expected value as a Fraction) - reference values are computed by Python, not by the calculator.
EXACT: list[tuple[str, Fraction]] = [
    ("347 * 29", Fraction(347 * 29)),
    ("697 * 205", Fraction(697 * 205)),
    ("2 + 2", Fraction(4)),
    ("2 + 3 * 4", Fraction(14)),
    ("(2 + 3) * 4", Fraction(20)),
    ("10 - 4 - 3", Fraction(3)),
    ("100 / 8", Fraction(100, 8)),
    ("1 / 3", Fraction(1, 3)),
    ("1/3 + 1/6", Fraction(1, 3) + Fraction(1, 6)),
    ("2/3 * 9/4", Fraction(2, 3) * Fraction(9, 4)),
    ("7 // 2", Fraction(7 // 2)),
    ("-7 // 2", Fraction(-7 // 2)),
    ("7 // -2", Fraction(7 // -2)),
    ("17 % 5", Fraction(17 % 5)),
    ("-7 % 3", Fraction(-7 % 3)),
    ("7 % -3", Fraction(7 % -3)),
    ("7.5 % 2", Fraction("7.5") % 2),
    ("7.5 // 2", Fraction(math.floor(Fraction("7.5") / 2))),
    ("2 ** 10", Fraction(2**10)),
    ("2^10", Fraction(2**10)),
    ("2 ** -3", Fraction(1, 8)),
    ("(-2) ** 3", Fraction(-8)),
    ("-2 ** 2", Fraction(-4)),
    ("(-2) ** 2", Fraction(4)),
    ("2 ** 3 ** 2", Fraction(2**9)),
    ("(2 ** 3) ** 2", Fraction(64)),
    ("0 ** 0", Fraction(1)),
    ("10 ** 20", Fraction(10**20)),
    ("3 ** 40", Fraction(3**40)),
    ("(1/2) ** 10", Fraction(1, 1024)),
    ("1.5 ** 2", Fraction("2.25")),
    ("0.1 + 0.2", Fraction("0.3")),
    ("0.1 * 3", Fraction("0.3")),
    ("1.1 * 1.1", Fraction("1.21")),
    ("3.14159 * 2", Fraction("6.28318")),
    ("1e3", Fraction(1000)),
    ("2.5e-3", Fraction("0.0025")),
    ("1.5E6 + 1", Fraction(1500001)),
    ("6.02e23 * 2", Fraction("1.204e24")),
    (".5 + .25", Fraction("0.75")),
    ("1,234,567 + 1", Fraction(1234568)),
    ("1,000 * 1,000", Fraction(10**6)),
    ("12,345.67 * 2", Fraction("24691.34")),
    ("max(1,234)", Fraction(234)),
    ("-5 + 3", Fraction(-2)),
    ("+5 - -3", Fraction(8)),
    ("--4", Fraction(4)),
    ("-(3 - 5)", Fraction(2)),
    ("2(3 + 4)", Fraction(14)),
    ("(1 + 2)(3 + 4)", Fraction(21)),
    ("3 × 4 ÷ 2", Fraction(6)),
    ("8 − 3", Fraction(5)),
    ("2²", Fraction(4)),
    ("2³ + 1", Fraction(9)),
    ("15% of 240", Fraction(36)),
    ("15 % of 240", Fraction(36)),
    ("12.5% of 80", Fraction(10)),
    ("240 + 15%", Fraction(276)),
    ("240 - 15%", Fraction(204)),
    ("50%", Fraction(1, 2)),
    ("200 * 5%", Fraction(10)),
    ("(100 + 10%) + 10%", Fraction(121)),
    ("5!", Fraction(math.factorial(5))),
    ("0!", Fraction(1)),
    ("10!", Fraction(math.factorial(10))),
    ("(2 + 1)!", Fraction(6)),
    ("3!!", Fraction(math.factorial(6))),
    ("factorial(20)", Fraction(math.factorial(20))),
    ("factorial(100)", Fraction(math.factorial(100))),
    ("10! / (3! * 7!)", Fraction(math.comb(10, 3))),
    ("binomial(10, 3)", Fraction(math.comb(10, 3))),
    ("binomial(52, 5)", Fraction(math.comb(52, 5))),
    ("choose(6, 2)", Fraction(15)),
    ("binomial(3, 5)", Fraction(0)),
    ("gcd(12, 18)", Fraction(6)),
    ("gcd(48, 180, 120)", Fraction(math.gcd(48, 180, 120))),
    ("lcm(4, 6)", Fraction(12)),
    ("lcm(2, 3, 4, 5)", Fraction(60)),
    ("gcd(0, 5)", Fraction(5)),
    ("min(3, 1, 2)", Fraction(1)),
    ("max(3, 1, 2)", Fraction(3)),
    ("max(-1/2, -1/3)", Fraction(-1, 3)),
    ("min(2.5, 5/2, 3)", Fraction(5, 2)),
    ("abs(-3)", Fraction(3)),
    ("abs(3 - 10)", Fraction(7)),
    ("abs(-1/2)", Fraction(1, 2)),
    ("floor(2.7)", Fraction(2)),
    ("floor(-2.5)", Fraction(-3)),
    ("ceil(2.1)", Fraction(3)),
    ("ceil(-2.1)", Fraction(-2)),
    ("ceiling(7/2)", Fraction(4)),
    ("round(2.5)", Fraction(3)),
    ("round(-2.5)", Fraction(-3)),
    ("round(2.4)", Fraction(2)),
    ("round(3.14159, 2)", Fraction("3.14")),
    ("round(2.675, 2)", Fraction("2.68")),
    ("round(1234, -2)", Fraction(1200)),
    ("sqrt(144)", Fraction(12)),
    ("sqrt 144", Fraction(12)),
    ("√16", Fraction(4)),
    ("sqrt(1/4)", Fraction(1, 2)),
    ("sqrt(2) * sqrt(2)", Fraction(2)),
    ("sqrt(8) / sqrt(2)", Fraction(2)),
    ("cbrt(27)", Fraction(3)),
    ("cbrt(-8)", Fraction(-2)),
    ("root(81, 4)", Fraction(3)),
    ("root(-32, 5)", Fraction(-2)),
    ("log(100, 10)", Fraction(2)),
    ("log10(1000)", Fraction(3)),
    ("log2(1024)", Fraction(10)),
    ("log(8, 2)", Fraction(3)),
    ("ln(e)", Fraction(1)),
    ("ln(1)", Fraction(0)),
    ("exp(0)", Fraction(1)),
    ("sin(0)", Fraction(0)),
    ("sin(pi / 6)", Fraction(1, 2)),
    ("cos(pi)", Fraction(-1)),
    ("cos(pi / 3)", Fraction(1, 2)),
    ("tan(pi / 4)", Fraction(1)),
    ("asin(1/2) * 6 / pi", Fraction(1)),
    ("atan(1) * 4 / pi", Fraction(1)),
    ("arccos(1)", Fraction(0)),
    ("e ** 0", Fraction(1)),
    ("pi - pi", Fraction(0)),
    ("(1 + 2) * (3 + 4) - 5 / (6 - 1)", Fraction(21) - 1),
    ("((((1))))", Fraction(1)),
    ("1 - (2 - (3 - (4 - 5)))", Fraction(1 - (2 - (3 - (4 - 5))))),
    ("123456789 * 987654321", Fraction(123456789 * 987654321)),
    ("99999999999 + 1", Fraction(10**11)),
    ("2 ** 100", Fraction(2**100)),
    ("1 / 7 * 7", Fraction(1)),
    ("100 / 3 / 3", Fraction(100, 9)),
    ("(5 + 3) % 3", Fraction(2)),
    ("2 ** 0.5 * 2 ** 0.5", Fraction(2)),
    ("4 ** 0.5", Fraction(2)),
    ("8 ** (1/3)", Fraction(2)),
    ("27 ** (2/3)", Fraction(9)),
]

# (input, float reference from the math module) for irrational results.
APPROXIMATE: list[tuple[str, float]] = [
    ("sqrt(2)", math.sqrt(2)),
    ("pi", math.pi),
    ("e", math.e),
    ("2pi", 2 * math.pi),
    ("exp(1.5)", math.exp(1.5)),
    ("ln(10)", math.log(10)),
    ("log(10)", math.log(10)),
    ("log10(2)", math.log10(2)),
    ("log2(10)", math.log2(10)),
    ("sin(1)", math.sin(1)),
    ("cos(2.5)", math.cos(2.5)),
    ("tan(0.3)", math.tan(0.3)),
    ("asin(0.2)", math.asin(0.2)),
    ("acos(0.4)", math.acos(0.4)),
    ("atan(3)", math.atan(3)),
    ("cbrt(2)", 2 ** (1 / 3)),
    ("root(10, 3)", 10 ** (1 / 3)),
    ("2 ** 0.5", math.sqrt(2)),
    ("1.05 ** 10", 1.05**10),
    ("sqrt(3) / 2", math.sqrt(3) / 2),
    ("pi * 5 ** 2", math.pi * 25),
    ("e ** pi", math.e**math.pi),
    ("exp(10)", math.exp(10)),
    ("log(2, 3)", math.log(2, 3)),
    ("sin(pi / 5)", math.sin(math.pi / 5)),
]


def _generated_cases(count: int = 60) -> list[tuple[str, Fraction]]:
    """Random two- and three-operand arithmetic with a fixed seed, the reference computed with fractions."""
    generator = random.Random(20261123)
    operators = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
    cases: list[tuple[str, Fraction]] = []
    while len(cases) < count:
        a, b, c = (Fraction(generator.randint(-999, 999), generator.choice([1, 1, 1, 4, 10])) for _ in range(3))
        first, second = generator.choice(list(operators)), generator.choice(list(operators))
        if (first == "/" and b == 0) or (second == "/" and c == 0):
            continue
        text = f"({_text(a)} {first} {_text(b)}) {second} {_text(c)}"
        cases.append((text, operators[second](operators[first](a, b), c)))
    return cases


def _text(value: Fraction) -> str:
    number = f"{value.numerator}" if value.denominator == 1 else f"{float(value)!r}"
    return f"({number})" if value < 0 else number


GENERATED = _generated_cases()


def test_the_table_has_at_least_150_expressions() -> None:
    assert len(EXACT) + len(APPROXIMATE) + len(GENERATED) >= 150


@pytest.mark.parametrize(("expression", "expected"), EXACT + GENERATED, ids=[e for e, _ in EXACT + GENERATED])
def test_exact_value_matches_fractions(expression: str, expected: Fraction) -> None:
    result = calculate(expression)
    assert Fraction(result.exact) == expected, (result.exact, result.expression)
    assert result.approx == pytest.approx(float(expected), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(("expression", "expected"), APPROXIMATE, ids=[e for e, _ in APPROXIMATE])
def test_irrational_value_matches_math(expression: str, expected: float) -> None:
    result = calculate(expression)
    assert result.approx == pytest.approx(expected, rel=1e-12)
    assert float(result.decimal) == pytest.approx(expected, rel=1e-13)
