"""Tools the assistant calls: the exact, safe SymPy calculator, plain-language arithmetic extraction, a registry."""

from tools.base import Tool, ToolSpec
from tools.calculator import CalcResult, calculate, warm_up
from tools.calculator_tool import CALCULATOR_SPEC, CalculatorTool
from tools.errors import (
    CalcParseError,
    CalcTimeLimitError,
    CalculatorError,
    MathDomainError,
    ResultTooLargeError,
    UnsupportedConstructError,
)
from tools.registry import get_tool, tool_names
from tools.words import extract_expression

__all__ = [
    "CALCULATOR_SPEC",
    "CalcParseError",
    "CalcResult",
    "CalcTimeLimitError",
    "CalculatorError",
    "CalculatorTool",
    "MathDomainError",
    "ResultTooLargeError",
    "Tool",
    "ToolSpec",
    "UnsupportedConstructError",
    "calculate",
    "extract_expression",
    "get_tool",
    "tool_names",
    "warm_up",
]
