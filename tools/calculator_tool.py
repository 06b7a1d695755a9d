"""The calculator as a :class:`tools.base.Tool`: its description, its argument schema, and a call."""

from __future__ import annotations

from typing import Any

from tools.base import ToolSpec
from tools.calculator import CalcResult, calculate
from tools.errors import CalculatorError
from tools.words import extract_expression

CALCULATOR_SPEC = ToolSpec(
    name="calculator",
    description=(
        "Exact arithmetic. Give ONE expression using numbers, + - * / // % ** ^, parentheses, percentages "
        "('15% of 240', '240 + 15%'), sqrt, cbrt, root(x, n), exp, log(x[, base]), ln, log10, log2, sin, cos, tan, "
        "asin, acos, atan, abs, floor, ceil, round(x[, digits]), factorial, binomial, gcd, lcm, min, max, pi, e; "
        "or an equation in one unknown: 'solve 2x + 3 = 7'. Returns the exact value and a decimal."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The arithmetic expression or equation, e.g. '347 * 29' or 'solve 2x + 3 = 7'.",
                "maxLength": 1000,
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
)


class CalculatorTool:
    """Calls :func:`tools.calculate`; plain-language arithmetic ("what is 7 times 8") is accepted too."""

    spec = CALCULATOR_SPEC

    def __call__(self, **arguments: Any) -> CalcResult:
        """Evaluate ``expression``; raises CalculatorError with a message on bad input."""
        unexpected = set(arguments) - {"expression"}
        expression = arguments.get("expression")
        if unexpected or not isinstance(expression, str):
            raise CalculatorError("the calculator takes exactly one argument: expression (a string)")
        return calculate(extract_expression(expression) or expression)
