"""The MCP server through the SDK's own clients: streamable HTTP over a real socket (fakes), stdio on the shipped
models (a subprocess running `assistant mcp`, as a desktop or IDE host starts it)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from assistant.api import Assistant
from assistant.core.settings import ServerSettings, Settings
from models.fake import FakeChatModel
from retrieval.embedders import FakeEmbedder
from tests.servers import Running

pytestmark = pytest.mark.usefixtures("untrained_escalation")  # fake models: see tests/conftest.py

ASSISTANT = str(Path(sys.executable).with_name("assistant"))
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "probe", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _assistant(tmp_path: Path) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    return Assistant.from_parts(FakeChatModel(name="small"), FakeChatModel(name="large"), FakeEmbedder(), None,
                                settings, tmp_path / "threads.sqlite")


async def _call(url: str, headers: dict[str, str] | None, tool: str, arguments: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(headers=headers, follow_redirects=True) as http, \
            streamable_http_client(url, http_client=http) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"ask", "calculate", "search_documents", "list_documents"} <= tools
        return await session.call_tool(tool, arguments)


def test_mcp_over_http_beside_the_chat_api(tmp_path: Path) -> None:
    instance = _assistant(tmp_path)
    with Running(instance, ServerSettings()) as running:
        result = asyncio.run(_call(running.url + "/mcp", None, "ask", {"question": "What is 2+3?"}))
        assert result.structuredContent["text"] == "5" and result.structuredContent["route"] == "MATH"
        bad = asyncio.run(_call(running.url + "/mcp", None, "calculate", {"expression": "().__class__"}))
        assert bad.isError and "not allowed" in bad.content[0].text
    instance.close()


def test_mcp_over_http_needs_the_key_and_refuses_a_foreign_origin(tmp_path: Path) -> None:
    instance = _assistant(tmp_path)
    with Running(instance, ServerSettings(api_key=SecretStr("s3cret"))) as running:
        url = running.url + "/mcp"
        assert httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS).status_code == 401
        key = {"Authorization": "Bearer s3cret"}
        foreign = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | key | {"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS | key).status_code == 200
        result = asyncio.run(_call(url, key, "calculate", {"expression": "347 * 29"}))
        assert result.structuredContent["exact"] == "10063"
    instance.close()


@pytest.mark.integration
def test_assistant_mcp_over_stdio_on_the_shipped_models(tmp_path: Path) -> None:
    """`assistant mcp` as a host starts it for a new user: no knowledge base, an empty index. It starts, says once
    on stderr how to add documents, answers, and answers from a document added through its own tool."""
    parameters = StdioServerParameters(command=ASSISTANT, args=["mcp"], env={
        **os.environ, "ASSISTANT_ASSISTANT__CHECKPOINT_PATH": str(tmp_path / "threads.sqlite"),
        "ASSISTANT_RETRIEVAL__INDEX_DIR": str(tmp_path / "index"), "ASSISTANT_MCP__ALLOW_ADD_DOCUMENTS": "true"})
    errors = tmp_path / "stderr.log"

    async def run() -> None:
        with errors.open("w") as errlog:
            async with stdio_client(parameters, errlog=errlog) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                empty = await session.call_tool("list_documents", {})
                assert empty.structuredContent is not None and empty.structuredContent["total"] == 0
                math = await session.call_tool("ask", {"question": "What is 347 * 29?"})
                assert math.structuredContent is not None and math.structuredContent["text"] == "10063"
                added = await session.call_tool("add_document", {
                    "doc_id": "notes/kettle", "title": "Tarnwick Q7 kettle",
                    "text": "The Tarnwick Q7 kettle carries a warranty of 38 months from the date of purchase."})
                assert added.structuredContent is not None and added.structuredContent["documents"][0]["chunks"] == 1
                fact = await session.call_tool("ask", {
                    "question": "How many months of warranty does the Tarnwick Q7 kettle have?", "escalation": "never"})
                assert fact.structuredContent is not None and fact.structuredContent["route"] == "FACT"
                assert "38" in fact.structuredContent["text"], fact.structuredContent["text"]
                cited = next(source for source in fact.structuredContent["sources"] if source["used"])
                passage = await session.read_resource(cited["uri"])
                assert "38 months" in passage.contents[0].text  # type: ignore[union-attr]
                found = await session.call_tool("search_documents", {"query": "kettle warranty", "k": 3})
                assert found.structuredContent is not None and len(found.structuredContent["passages"]) == 1
                exact = await session.call_tool("calculate", {"expression": "15% of 240"})
                assert exact.structuredContent is not None and exact.structuredContent["exact"] == "36"

    asyncio.run(run())
    from assistant.core.knowledge_base import EMPTY_INDEX_HINT

    assert errors.read_text().count(EMPTY_INDEX_HINT) == 1, errors.read_text()[-2000:]


def test_mcp_ask_waits_in_the_chat_endpoints_line(tmp_path: Path) -> None:
    """One queue for both doors: with the only slot taken by a chat request and no room to wait, MCP's ask is
    refused (a tool error saying the assistant is busy) instead of running beside it."""
    import threading

    gate = threading.Event()
    started = threading.Event()

    def held(messages: object) -> str:
        started.set()
        assert gate.wait(30)
        return "done"

    instance = _assistant(tmp_path)
    instance.models["small"].responder = held  # type: ignore[attr-defined]
    with Running(instance, ServerSettings(concurrency=1, queue_size=0)) as running:
        chat = threading.Thread(target=lambda: httpx.post(
            running.url + "/v1/chat/completions", timeout=30,
            json={"model": "small", "messages": [{"role": "user", "content": "hold the slot"}]}))
        chat.start()
        assert started.wait(10)
        refused = asyncio.run(_call(running.url + "/mcp", None, "ask", {"question": "Tell me a story."}))
        assert refused.isError and "busy" in refused.content[0].text
        gate.set()
        chat.join()
        allowed = asyncio.run(_call(running.url + "/mcp", None, "ask", {"question": "What is 2+2?"}))
        assert allowed.structuredContent["text"] == "4"
    instance.close()
