"""A LangGraph ReAct agent using this assistant's tools over MCP, driven by one of our own models through the
OpenAI-compatible endpoint: an agent loop that runs offline on this machine.

The agent loads the tools from `/mcp` with langchain-mcp-adapters, and its language model is `ChatOpenAI` pointed
at `/v1` (model `small` or `large`: llama.cpp renders the tools into the model's chat template and the server turns
its `<tool_call>` replies into OpenAI tool calls). The first step asks for `tool_choice="required"`, which the
server enforces with a grammar, so even a small model calls a tool instead of answering from memory; the second
step answers from the tool's result.

    .venv/bin/assistant serve                                   # terminal 1: chat API + MCP at :8000
    .venv/bin/python examples/langgraph_agent.py "What is 347 * 29?"

Options: --url (default http://127.0.0.1:8000), --model small|large, --api-key (when the server has one),
--tools (which of our MCP tools the agent sees, comma-separated; default ask: a 0.5-1.5B model picks
between several tools poorly, so the routing is left to the assistant).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

SYSTEM = ("Use the tools to answer: pass the user's question to ask (it computes arithmetic exactly and answers "
          "facts from documents). When the tool has answered, reply with one short sentence that repeats its answer.")


async def answer(question: str, *, url: str = "http://127.0.0.1:8000", model: str = "large",
                 api_key: str | None = None, tools: tuple[str, ...] = ("ask",),
                 ) -> dict[str, Any]:
    """Run the agent on ``question``; returns the final text and the tool calls it made."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = MultiServerMCPClient({"assistant": {"url": f"{url}/mcp", "transport": "streamable_http",
                                                 "headers": headers}})
    offered = [tool for tool in await client.get_tools() if tool.name in tools]
    llm = ChatOpenAI(base_url=f"{url}/v1", api_key=api_key or "unused", model=model, temperature=0,  # type: ignore[arg-type]
                     max_retries=0, timeout=300)
    must_call = llm.bind_tools(offered, tool_choice="required")

    def choose_model(state: dict[str, Any], runtime: Any) -> Any:
        """First a tool call (the server constrains the reply to one), then an answer from the tool's result."""
        answered = any(isinstance(message, ToolMessage) for message in state["messages"])
        return llm if answered else must_call

    agent = create_react_agent(choose_model, offered, prompt=SYSTEM)
    state = await agent.ainvoke({"messages": [("user", question)]}, {"recursion_limit": 8})
    calls = [call["name"] for message in state["messages"] for call in getattr(message, "tool_calls", []) or []]
    return {"answer": state["messages"][-1].content, "tool_calls": calls}


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or one it groups or was caused by) is a refused or failed connection."""
    import httpx

    if isinstance(error, (httpx.ConnectError, ConnectionError)):
        return True
    inner = [*getattr(error, "exceptions", ()), error.__cause__, error.__context__]
    return any(unreachable(item) for item in inner if item is not None)


def main() -> int:
    """Parse the command line and print the agent's answer and the tools it called."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="+")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", choices=["small", "large"], default="large")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--tools", default="ask")
    args = parser.parse_args()
    try:
        result = asyncio.run(answer(" ".join(args.question), url=args.url, model=args.model, api_key=args.api_key,
                                    tools=tuple(args.tools.split(","))))
    except Exception as error:
        if not unreachable(error):
            raise
        print(f"error: no assistant server answers at {args.url}: start one with `.venv/bin/assistant serve` "
              "(or pass --url)", file=sys.stderr)
        return 2
    print(f"tools called: {', '.join(result['tool_calls']) or 'none'}\n{result['answer']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
