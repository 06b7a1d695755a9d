"""Tools by name."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from assistant.errors import ConfigError
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
        close = difflib.get_close_matches(name, _FACTORIES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known tools: {', '.join(tool_names())}"
        raise ConfigError(f"unknown tool {name!r}", hint)
    return factory()
