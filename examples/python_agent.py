"""The assistant as a tool inside your own Python agent (same process, no server).

`Assistant.as_tool()` gives a callable with a name, a description and a JSON schema: register `tool.to_openai()`
with any tool-calling framework, and call `tool(**arguments)` when the model asks for it. Below, a tiny agent loop
dispatches tool calls the way an agent framework would.

Run: .venv/bin/python examples/python_agent.py ["your question" ...]

It answers from the configured index (your documents: `assistant index add PATH`); with an empty index it still
runs, says so once on stderr, and labels answers that come from general knowledge rather than documents.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from assistant.api import Assistant, AssistantTool


def dispatch(tools: dict[str, AssistantTool], call: dict[str, Any]) -> str:
    """Run one OpenAI-style tool call ``{"name": ..., "arguments": "<json>"}`` and return the tool's text."""
    tool = tools.get(call["name"])
    if tool is None:
        return f"error: no tool named {call['name']!r}; available: {', '.join(tools)}"
    return tool(**json.loads(call["arguments"]))


def main(questions: list[str]) -> int:
    """Register the tool, then answer each question through a tool call."""
    assistant = Assistant.from_settings(progress=False)
    tool = assistant.as_tool()
    tools = {tool.name: tool}
    print("registered:", json.dumps(tool.to_openai()["function"]["name"]))
    for question in questions:
        call = {"name": tool.name, "arguments": json.dumps({"question": question})}  # what a model would emit
        print(f"Q: {question}\nA: {dispatch(tools, call)}\n")
    assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["What is 347 * 29?", "Who wrote the novel Pride and Prejudice?"]))
