"""The interface every tool implements, and its description for tool-calling models and agents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolSpec:
    """Name, description and JSON schema of a tool's arguments, as tool-calling APIs expect them."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry for this tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class Tool(Protocol):
    """A deterministic capability the assistant can call with JSON arguments."""

    @property
    def spec(self) -> ToolSpec:
        """How to describe the tool to a model or an agent framework."""
        ...

    def __call__(self, **arguments: Any) -> Any:
        """Run the tool; raises an AssistantError subclass with a message on bad arguments."""
        ...
