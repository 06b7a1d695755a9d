"""The MCP server with fake models, through the SDK's own client over in-memory streams."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session
from pydantic import AnyUrl

from assistant.api import Assistant
from assistant.core.settings import McpSettings, ServerSettings, Settings
from assistant.mcp_server import build_mcp, doc_uri
from models.base import Completion, Message, StreamItem, TextDelta, Usage
from models.fake import FakeChatModel
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
from tests.routers import FixedRouter

DOCUMENTS = [
    Document("notes/sb50.md", "Super Bowl 50 was won by the Denver Broncos at Levi's Stadium in Santa Clara.",
             "Super Bowl 50"),
    Document("notes/paris.md", "The Eiffel Tower is in Paris, the capital of France.", "Paris"),
]


class Endless(FakeChatModel):
    """Streams words until told to stop; records that it stopped."""

    def __init__(self) -> None:
        super().__init__(name="large")
        self.produced = 0
        self.started = threading.Event()
        self.stopped = threading.Event()

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[StreamItem]:
        self.started.set()
        try:
            for index in range(2000):
                time.sleep(0.01)
                self.produced += 1
                yield TextDelta(f" w{index}")
            yield Completion("done", "stop", Usage(self.name, 1, 2000, 0.0, 0.0, 1, 0.0), [0.9] * 2000)
        finally:
            self.stopped.set()


def _assistant(tmp_path: Path, small: FakeChatModel, large: FakeChatModel | None = None) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
    retriever.add_documents(DOCUMENTS, progress=False)
    return Assistant.from_parts(small, large or FakeChatModel(name="large"), FakeEmbedder(), retriever, settings,
                                tmp_path / "threads.sqlite")


@asynccontextmanager
async def _client(assistant: Assistant, **mcp: Any) -> AsyncIterator[ClientSession]:
    server = build_mcp(assistant, ServerSettings(request_timeout_s=mcp.pop("timeout", 30.0)), McpSettings(**mcp))
    async with create_connected_server_and_client_session(server) as session:
        yield session


def test_tools_have_schemas_and_descriptions(tmp_path: Path) -> None:
    async def run() -> None:
        async with _client(_assistant(tmp_path, FakeChatModel(name="small"))) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == {"ask", "search_documents", "calculate", "list_documents"}
            for tool in tools.values():
                assert tool.description and len(tool.description) > 30, tool.name
                assert tool.inputSchema["type"] == "object"
            assert tools["ask"].inputSchema["required"] == ["question"]
            assert tools["ask"].outputSchema is not None and "route" in tools["ask"].outputSchema["properties"]
            assert tools["ask"].inputSchema["properties"]["question"]["maxLength"] == 8000
        async with _client(_assistant(tmp_path / "b", FakeChatModel(name="small")),
                           allow_add_documents=True) as session:
            assert "add_document" in {tool.name for tool in (await session.list_tools()).tools}

    asyncio.run(run())


def test_ask_calculate_search_list_and_read_a_cited_passage(tmp_path: Path) -> None:
    small = FakeChatModel(name="small").enqueue("Denver Broncos", probability=0.95)
    assistant = _assistant(tmp_path, small)

    async def run() -> None:
        async with _client(assistant) as session:
            math = await session.call_tool("ask", {"question": "What is 347 * 29?"})
            assert not math.isError and math.structuredContent is not None
            assert math.structuredContent["text"] == "10063" and math.structuredContent["route"] == "MATH"
            assert math.structuredContent["thread_id"] is None  # a one-off question is not kept
            steps: list[str] = []

            async def progress(done: float, total: float | None, message: str | None) -> None:
                steps.append(message or "")

            fact = await session.call_tool("ask", {"question": "Which team won Super Bowl 50?", "thread_id": "t1"},
                                           progress_callback=progress)
            content = fact.structuredContent
            assert content is not None and content["route"] == "FACT" and content["thread_id"] == "t1"
            assert content["text"].startswith("Denver Broncos") and content["cost"]["model_calls"] == 1
            assert {"tokens_per_second", "energy_joules", "energy_source"} <= set(content["cost"])
            assert steps[0] == "route" and "answer_fact" in steps
            cited = [source for source in content["sources"] if source["used"]]
            assert cited and cited[0]["uri"] == doc_uri(cited[0]["chunk_id"])
            assert "Denver Broncos" in fact.content[0].text and cited[0]["uri"] in fact.content[0].text
            passage = await session.read_resource(AnyUrl(cited[0]["uri"]))
            assert "Levi's Stadium" in passage.contents[0].text  # type: ignore[union-attr]

            calc = await session.call_tool("calculate", {"expression": "sqrt(2)^2 + 1/3"})
            assert calc.structuredContent == {"expression": calc.structuredContent["expression"], "exact": "7/3",
                                              "decimal": calc.structuredContent["decimal"], "solutions": []}
            found = await session.call_tool("search_documents", {"query": "Eiffel Tower", "k": 1})
            assert found.structuredContent is not None
            assert found.structuredContent["passages"][0]["doc_id"] == "notes/paris.md"
            listed = await session.call_tool("list_documents", {"prefix": "notes/"})
            assert listed.structuredContent is not None and listed.structuredContent["total"] == 2

    asyncio.run(run())
    assert assistant.history("t1")[-1]["content"].startswith("Denver Broncos")


def test_bad_calls_get_tool_errors_that_say_what_to_fix(tmp_path: Path) -> None:
    async def run() -> None:
        async with _client(_assistant(tmp_path, FakeChatModel(name="small"))) as session:
            injected = await session.call_tool("calculate", {"expression": "__import__('os').system('id')"})
            assert injected.isError and "not allowed" in injected.content[0].text  # type: ignore[union-attr]
            huge = await session.call_tool("ask", {"question": "x" * 9000})
            assert huge.isError and "8000" in huge.content[0].text  # type: ignore[union-attr]
            malformed = await session.call_tool("search_documents", {"query": "q", "k": "many"})
            assert malformed.isError
            thread = await session.call_tool("ask", {"question": "hi", "thread_id": "../../etc/passwd"})
            assert thread.isError
            missing = await session.call_tool("no_such_tool", {})
            assert missing.isError
            with pytest.raises(Exception, match="no passage"):
                await session.read_resource(AnyUrl(doc_uri("nothing#0")))

    asyncio.run(run())


def test_cancelling_ask_stops_generation(tmp_path: Path) -> None:
    writer = Endless()  # chat starts on the large model: it is the one writing
    assistant = _assistant(tmp_path, FakeChatModel(name="small"), writer)

    async def run() -> None:
        async with _client(assistant) as session:
            request_id = session._request_id  # the id the next request gets
            call = asyncio.ensure_future(session.call_tool("ask", {"question": "Write a long poem about rivers."}))
            while not writer.started.is_set():
                await asyncio.sleep(0.01)
            await session.send_notification(types.ClientNotification(types.CancelledNotification(
                params=types.CancelledNotificationParams(requestId=request_id, reason="the user pressed stop"))))
            assert await asyncio.to_thread(writer.stopped.wait, 5), "generation went on after the cancel"
            call.cancel()

    asyncio.run(run())
    assert writer.produced < 2000


def test_ask_past_the_time_limit_is_a_tool_error_and_stops(tmp_path: Path) -> None:
    writer = Endless()

    async def run() -> None:
        async with _client(_assistant(tmp_path, FakeChatModel(name="small"), writer), timeout=0.3) as session:
            result = await session.call_tool("ask", {"question": "Write a long poem about rivers."})
            assert result.isError and "0.3 s limit" in result.content[0].text  # type: ignore[union-attr]

    asyncio.run(run())
    assert writer.stopped.wait(5) and writer.produced < 2000


def test_add_document_only_when_allowed_and_never_a_path(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path, FakeChatModel(name="small"))

    async def run() -> None:
        async with _client(assistant, allow_add_documents=True) as session:
            added = await session.call_tool("add_document", {"doc_id": "memo", "text": "The launch is on Friday.",
                                                             "title": "Memo"})
            assert added.structuredContent is not None
            assert added.structuredContent["documents"][0]["doc_id"] == "mcp/memo"
            escape = await session.call_tool("add_document", {"doc_id": "../../etc/passwd", "text": "x"})
            assert escape.isError

    asyncio.run(run())
    assert assistant.retriever is not None and "mcp/memo" in assistant.retriever.store.documents()


def test_ask_sends_a_word_problems_working_as_progress_and_returns_it(tmp_path: Path) -> None:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    large = FakeChatModel(name="large").enqueue("3 bags of 4: 3 * 4 = 11", " apples\nAnswer: 12")
    assistant = Assistant(FakeChatModel(name="small"), large, FixedRouter("MATH"), None,  # type: ignore[arg-type]
                          settings, tmp_path / "threads.sqlite")
    messages: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async def run() -> None:
        async with _client(assistant) as session:
            result = await session.call_tool("ask", {"question": "How many apples are in 3 bags of 4?"},
                                             progress_callback=progress)
            assert result.structuredContent is not None and result.structuredContent["text"] == "12 apples"
            assert result.structuredContent["working"] == "3 bags of 4: 3 * 4 = 12 apples\nAnswer: 12"
            assert result.content[0].text.startswith("Working:\n3 bags of 4: 3 * 4 = 12 apples")  # type: ignore[union-attr]

    asyncio.run(run())
    assert "working: 3 bags of 4: 3 * 4 = 12 apples" in messages  # each line as it is written
