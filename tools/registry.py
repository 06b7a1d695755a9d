"""Tools by name."""

from __future__ import annotations

from collections.abc import Callable

from assistant.errors import ConfigError, choice_hint
from tools.base import Tool
from tools.calculator_tool import CalculatorTool

_FACTORIES: dict[str, Callable[[], Tool]] = {"calculator": CalculatorTool}


def tool_names() -> list[str]:
    """Names of every registered tool."""
    return sorted(_FACTORIES)


def get_tool(name: str) -> Tool:
    """A new instance of the tool called ``name``; unknown names get a did-you-mean hint."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown tool {name!r}", choice_hint(name, _FACTORIES, "known tools"))
    return factory()
