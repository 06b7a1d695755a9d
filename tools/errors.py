"""Errors of the calculator; every message says what was wrong with the input."""

from __future__ import annotations

from common.errors import AssistantError


class CalculatorError(AssistantError):
    """The calculator could not answer; ``str(error)`` says why."""


class CalcParseError(CalculatorError):
    """The input is not a well-formed expression (unbalanced brackets, a stray operator...)."""


class UnsupportedConstructError(CalculatorError):
    """The input uses something the calculator does not allow: names, attributes, strings, lambdas..."""


class ResultTooLargeError(CalculatorError):
    """The result (or an intermediate value) would exceed the size or memory limit."""


class CalcTimeLimitError(CalculatorError):
    """The evaluation did not finish within the time limit and was stopped."""


class MathDomainError(CalculatorError):
    """The expression is well-formed but undefined: division by zero, log(0), factorial(-1)..."""
