"""Tools the assistant calls: the exact, safe SymPy calculator and plain-language arithmetic extraction."""

from tools.calculator import CalcResult, calculate, warm_up
from tools.errors import (
    CalcParseError,
    CalcTimeLimitError,
    CalculatorError,
    MathDomainError,
    ResultTooLargeError,
    UnsupportedConstructError,
)
from tools.words import extract_expression

__all__ = [
    "CalcParseError",
    "CalcResult",
    "CalcTimeLimitError",
    "CalculatorError",
    "MathDomainError",
    "ResultTooLargeError",
    "UnsupportedConstructError",
    "calculate",
    "extract_expression",
    "warm_up",
]
