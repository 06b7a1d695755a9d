"""Word-problem programs: named steps, each one calculator expression, evaluated in order by the calculator.

A model writes ``{"steps": [{"name": "eggs_per_day", "expression": "16 - 3 - 4"}, ...]}``; the last step is the
answer. Names of earlier steps are replaced by their exact values (in parentheses) before the calculator sees an
expression, so the model never does arithmetic and no text ever reaches eval/sympify.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tools.calculator import CalcResult
from tools.errors import CalculatorError

MAX_STEPS = 8
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
PROGRAM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_STEPS,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "expression": {"type": "string", "maxLength": 200},
                },
                "required": ["name", "expression"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["steps"],
    "additionalProperties": False,
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ProgramError(ValueError):
    """The program is malformed, or one of its steps does not evaluate to a number."""


def parse_program(text: str) -> list[tuple[str, str]]:
    """The ``(name, expression)`` steps of a model's JSON reply; raises :class:`ProgramError` if malformed."""
    try:
        steps = json.loads(text)["steps"]
        program = [(str(step["name"]), str(step["expression"])) for step in steps]
    except (ValueError, KeyError, TypeError) as error:
        raise ProgramError(f"not a program: {error}") from error
    for name, _ in program:
        if not re.match(NAME_PATTERN, name):
            raise ProgramError(f"bad step name {name!r}")
    return program


def substitute(expression: str, values: dict[str, str]) -> str:
    """``expression`` with every whole-word name of an earlier step replaced by its value in parentheses."""
    return _IDENTIFIER.sub(lambda match: f"({values[match.group()]})" if match.group() in values else match.group(),
                           expression)


def run_steps(steps: list[tuple[str, str]], calculate: Callable[[str], CalcResult]) -> CalcResult:
    """Run ``(name, expression)`` steps in order through ``calculate``; the last step's result is the answer.

    Raises :class:`ProgramError` when there are no steps or more than ``MAX_STEPS``, or a step fails or is not a
    number (an unknown name would otherwise make the calculator return an expression in that symbol).
    """
    if not steps or len(steps) > MAX_STEPS:
        raise ProgramError(f"a program has 1 to {MAX_STEPS} steps, this one has {len(steps)}")
    values: dict[str, str] = {}
    result: CalcResult | None = None
    for name, expression in steps:
        try:
            result = calculate(substitute(expression, values))
        except CalculatorError as error:
            raise ProgramError(f"step {name!r} ({expression}) failed: {error}") from error
        if result.approx is None or result.solutions:
            raise ProgramError(f"step {name!r} ({expression}) is not a number: {result.exact}")
        values[name] = result.exact
    assert result is not None  # checked above: at least one step
    return result


def evaluate_program(text: str, calculate: Callable[[str], CalcResult]) -> CalcResult:
    """Parse a model's JSON program and run it (:func:`run_steps`); raises :class:`ProgramError`."""
    return run_steps(parse_program(text), calculate)
