"""Property tests: random expression trees give the reference value or a CalculatorError, never anything else."""

from __future__ import annotations

import math
import sys
import time
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools import CalcResult, CalculatorError, ResultTooLargeError, calculate
from tools.parsing import parse

OPERATORS = ["+", "-", "*", "/", "//", "%", "**"]
sys.set_int_max_str_digits(0)  # the reference prints integers of up to ~30,000 digits


class UndefinedError(Exception):
    """The reference evaluator's division by zero."""


class UnknownError(Exception):
    """The reference cannot say (irrational or too large to compute cheaply)."""


def _reference(tree: object) -> Fraction:
    """Python's own exact arithmetic on the tree (Fraction semantics for // and %, like Python's)."""
    if isinstance(tree, Fraction):
        return tree
    assert isinstance(tree, tuple)
    if tree[0] == "neg":
        return -_reference(tree[1])
    op, left_tree, right_tree = tree
    left, right = _reference(left_tree), _reference(right_tree)
    if op in ("/", "//", "%") and right == 0:
        raise UndefinedError
    if op == "**":
        if right.denominator != 1:
            raise UnknownError
        if left == 0 and right < 0:
            raise UndefinedError
        size = abs(right) * max(abs(left.numerator), left.denominator).bit_length()
        if size > 50_000:
            raise UnknownError
        return left ** int(right)
    return {
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
        "/": lambda: left / right,
        "//": lambda: Fraction(math.floor(left / right)),
        "%": lambda: left - right * math.floor(left / right),
    }[op]()


def _text(tree: object) -> str:
    if isinstance(tree, Fraction):
        if tree.denominator == 1:
            return f"({tree.numerator})" if tree < 0 else str(tree.numerator)
        return f"({tree.numerator}/{tree.denominator})"
    assert isinstance(tree, tuple)
    if tree[0] == "neg":
        return f"(-({_text(tree[1])}))"
    op, left, right = tree
    return f"({_text(left)} {op} {_text(right)})"


def _calculate(text: str) -> CalcResult | CalculatorError:
    """The result, or the CalculatorError raised; any other exception propagates and fails the test."""
    try:
        return calculate(text)
    except CalculatorError as error:
        return error


numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(Fraction),
    st.fractions(min_value=-1000, max_value=1000, max_denominator=1000),
    st.sampled_from([Fraction(0), Fraction(1), Fraction(2), Fraction(10), Fraction(1, 2)]),
)
trees = st.recursive(
    numbers,
    lambda children: st.one_of(
        st.tuples(st.sampled_from(OPERATORS), children, children),
        st.tuples(st.just("neg"), children),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_random_expressions_match_the_reference_or_raise_a_calculator_error(tree: object) -> None:
    text = _text(tree)
    started = time.monotonic()
    try:
        expected: Fraction | type[Exception] = _reference(tree)
    except (UndefinedError, UnknownError) as outcome:
        expected = type(outcome)
    except (OverflowError, MemoryError):
        expected = UnknownError
    outcome = _calculate(text)
    if isinstance(outcome, CalculatorError):
        assert expected in (UndefinedError, UnknownError) or isinstance(outcome, ResultTooLargeError), (text, outcome)
    else:
        result = outcome
        assert expected is not UndefinedError, (text, result)
        if isinstance(expected, Fraction) and "digits)" in result.exact:  # abbreviated huge numbers
            for part in (expected.numerator, expected.denominator):
                digits = str(abs(part))
                assert len(digits) <= 1000 or f"{digits[-10:]} ({len(digits):,} digits)" in result.exact, text
        elif isinstance(expected, Fraction):
            assert Fraction(result.exact) == expected, text
    assert time.monotonic() - started < 2.0, text


@settings(max_examples=200, deadline=None)
@given(trees)
def test_normalised_text_parses_back_to_the_same_tree(tree: object) -> None:
    parsed = parse(_text(tree))
    assert parse(parsed.text) == parsed


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-*/%^()!., exsqrtpilogfacto=_'\"[]:", max_size=40))
def test_arbitrary_text_never_raises_anything_but_a_calculator_error(text: str) -> None:
    started = time.monotonic()
    outcome = _calculate(text)
    assert not isinstance(outcome, CalculatorError) or str(outcome)
    assert time.monotonic() - started < 2.0, text
