"""The server over a real socket: the official openai client, raw SSE bytes, and the S4/S5 hardening cases."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from assistant.api import Assistant
from assistant.core.errors import ConfigError
from assistant.core.settings import ServerSettings, Settings
from assistant.server.guard import check_bind, is_loopback
from models.fake import FakeChatModel
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
from tests.servers import SMALL_WRITES_CHAT, Running

pytestmark = pytest.mark.usefixtures("untrained_escalation")  # fake models: see tests/conftest.py


@pytest.fixture
def fakes() -> tuple[FakeChatModel, FakeChatModel]:
    return (FakeChatModel(name="small", parameters=630_000_000, price_per_million_tokens=0.05),
            FakeChatModel(name="large", parameters=1_777_000_000, price_per_million_tokens=0.15))


@pytest.fixture
def assistant(tmp_path: Path, fakes: tuple[FakeChatModel, FakeChatModel]) -> Iterator[Assistant]:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
    retriever.add_documents([Document("sb50.txt", "The Denver Broncos won Super Bowl 50 in Santa Clara.",
                                      "Super Bowl 50")], progress=False)
    instance = Assistant.from_parts(fakes[0], fakes[1], FakeEmbedder(), retriever, settings,
                                    tmp_path / "threads.sqlite")
    yield instance
    instance.close()


@pytest.fixture
def server(assistant: Assistant) -> Iterator[Running]:
    with Running(assistant, ServerSettings()) as running:
        yield running


def test_openai_client_non_streaming(server: Running) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    response = client.chat.completions.with_raw_response.create(
        model="assistant", messages=[{"role": "user", "content": "What is 347 * 29?"}])
    completion = response.parse()
    assert completion.choices[0].message.content == "10063"
    assert response.headers["x-assistant-route"] == "MATH" and response.headers["x-assistant-escalated"] == "false"
    extra = completion.model_extra or {}
    assert extra["x_assistant"]["route"] == "MATH" and completion.usage is not None
    assert [model.id for model in client.models.list()] == ["assistant", "small", "large"]


def test_openai_client_streaming_with_usage(server: Running, fakes: tuple[FakeChatModel, FakeChatModel]) -> None:
    fakes[0].enqueue("Denver Broncos", probability=0.95)  # the graph adds the citation
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="assistant", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Which team won Super Bowl 50?"}])
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Denver Broncos [1]"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    final = next(chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason == "stop")
    assert (final.model_extra or {})["x_assistant"]["sources"][0]["chunk_id"] == "sb50.txt#0"


def test_raw_sse_bytes_and_threads(server: Running, fakes: tuple[FakeChatModel, FakeChatModel]) -> None:
    fakes[0].enqueue("Hello Ada", "You are Ada")
    body = {"model": "assistant", "stream": True, "messages": [{"role": "user", "content": "Hi, I am Ada. Say hi."}]}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body,
                      headers={"X-Thread-Id": "sse-thread"}) as response:
        raw = b"".join(response.iter_bytes())
    events = [block for block in raw.decode().split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events)
    assert events[-1] == "data: [DONE]"
    first = json.loads(events[0][6:])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"
    second = httpx.post(f"{server.url}/v1/chat/completions",
                        json={"messages": [{"role": "user", "content": "Tell me my name, please."}],
                              "thread_id": "sse-thread"})
    assert second.json()["x_assistant"]["thread_id"] == "sse-thread"
    history = [m["content"] for m in fakes[0].calls[-1].messages]
    assert "Hi, I am Ada. Say hi." in history


def test_direct_tiers(server: Running, fakes: tuple[FakeChatModel, FakeChatModel]) -> None:
    fakes[1].enqueue("from the large model")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    completion = client.chat.completions.create(model="large", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "from the large model"
    fakes[0].enqueue("streamed small words")
    chunks = list(client.chat.completions.create(model="small", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed small words"


def test_tool_calling_on_a_direct_tier(server: Running, fakes: tuple[FakeChatModel, FakeChatModel]) -> None:
    """OpenAI function calling for agents: tools in, tool_calls out, the tool's result back in the next turn."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    tools: Any = [{"type": "function", "function": {"name": "calculate", "description": "Exact arithmetic.",
                                                    "parameters": {"type": "object", "properties": {
                                                        "expression": {"type": "string"}}}}}]
    fakes[1].enqueue('<tool_call>{"name": "calculate", "arguments": {"expression": "347 * 29"}}</tool_call>',
                     "347 * 29 is 10063.")
    first = client.chat.completions.create(model="large", tools=tools,
                                           messages=[{"role": "user", "content": "What is 347 * 29?"}])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "calculate" and json.loads(call.function.arguments) == {"expression": "347 * 29"}
    assert fakes[1].calls[-1].messages[-1]["content"] == "What is 347 * 29?"
    second = client.chat.completions.create(model="large", tools=tools, messages=[
        {"role": "user", "content": "What is 347 * 29?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "10063"}])
    assert second.choices[0].message.content == "347 * 29 is 10063." and second.choices[0].finish_reason == "stop"
    sent = fakes[1].calls[-1].messages
    assert sent[-1] == {"role": "tool", "content": "10063", "tool_call_id": call.id}
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "calculate"
    forced = httpx.post(f"{server.url}/v1/chat/completions", json={
        "model": "large", "tools": tools, "tool_choice": "required",
        "messages": [{"role": "user", "content": "hi"}]})
    assert forced.status_code == 200
    schema = fakes[1].calls[-1].json_schema
    assert schema is not None and schema["properties"]["name"]["enum"] == ["calculate"]
    unknown = httpx.post(f"{server.url}/v1/chat/completions", json={
        "model": "large", "tools": tools, "tool_choice": {"type": "function", "function": {"name": "shell"}},
        "messages": [{"role": "user", "content": "hi"}]})
    assert unknown.status_code == 400 and "shell" in unknown.json()["error"]["message"]


def test_page_and_health(server: Running) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"></script>' in page.text
    script = httpx.get(server.url + "/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "DOMPurify.sanitize" in script.text and "innerHTML" not in script.text
    assert httpx.get(server.url + "/health").json()["status"] == "ok"


def test_request_limits(server: Running) -> None:
    url = f"{server.url}/v1/chat/completions"
    big = httpx.post(url, content=b"x" * 70_000, headers={"Content-Type": "application/json"})
    assert big.status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the streamed bytes are counted
        for _ in range(70):
            yield b"x" * 1000

    assert httpx.post(url, content=chunked(), headers={"Content-Type": "application/json"}).status_code == 413
    capped = httpx.post(url, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000})
    assert capped.status_code == 400 and "cap" in capped.text
    assert httpx.post(url, json={"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}).status_code == 404
    assert httpx.post(url, json={"messages": []}).status_code == 400
    assert httpx.post(url, json={"messages": [{"role": "system", "content": "only"}]}).status_code == 400


def test_s5_host_allowlist_and_cors(server: Running) -> None:
    rebinding = httpx.get(server.url + "/health", headers={"Host": "evil.example.com"})
    assert rebinding.status_code == 400
    preflight = httpx.options(f"{server.url}/v1/chat/completions",
                              headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_s4_api_key_and_cors_allowlist(assistant: Assistant) -> None:
    settings = ServerSettings(api_key=SecretStr("s3cret"), cors_origins=["https://allowed.example"])
    with Running(assistant, settings) as running:
        url = f"{running.url}/v1/models"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(running.url + "/health").status_code == 200
        allowed = httpx.options(url, headers={"Origin": "https://allowed.example",
                                              "Access-Control-Request-Method": "GET"})
        assert allowed.headers.get("access-control-allow-origin") == "https://allowed.example"
        foreign = httpx.options(url, headers={"Origin": "https://evil.example",
                                              "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in foreign.headers


def test_s4_binding_beyond_loopback_needs_a_key() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    check_bind(ServerSettings())
    with pytest.raises(ConfigError, match="without an API key"):
        check_bind(ServerSettings(host="0.0.0.0"))
    check_bind(ServerSettings(host="0.0.0.0", api_key=SecretStr("k")))
    for blank in ("", "   ", "\t"):  # S12: an empty key is no key (it let the server start open before)
        with pytest.raises(ConfigError, match="without an API key"):
            check_bind(ServerSettings(host="0.0.0.0", api_key=SecretStr(blank)))
    assert ServerSettings().host == "127.0.0.1"


def test_metrics_in_prometheus_format(server: Running) -> None:
    httpx.post(f"{server.url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "What is 2+3?"}]})
    text = httpx.get(server.url + "/metrics").text
    assert '# TYPE assistant_requests_total counter' in text
    assert 'assistant_routes_total{route="MATH"} 1.0' in text
    assert 'assistant_request_seconds_bucket{le="+Inf",path="/v1/chat/completions"} 1.0' in text
    assert 'assistant_queue_depth{queue="models"} 0.0' in text


def test_metrics_labels_are_route_templates_not_raw_paths(server: Running) -> None:
    """#20 finding 3: 5,000 GETs to random paths grew /metrics from 6 KB to 22.8 MB (the raw path was a label)."""
    with httpx.Client(base_url=server.url) as client:
        for index in range(300):
            assert client.get(f"/random-{index}-{'x' * 50}").status_code == 404
        text = client.get("/metrics").text
    assert "random-" not in text
    assert 'assistant_requests_total{path="unmatched",status="404"} 300.0' in text
    assert len(text) < 20_000


def test_a_full_queue_answers_429_with_retry_after(assistant: Assistant,
                                                   fakes: tuple[FakeChatModel, FakeChatModel]) -> None:
    gate = threading.Event()

    def blocked(messages: object) -> str:
        assert gate.wait(30)
        return "a held answer"

    fakes[0].responder = blocked
    settings = ServerSettings(concurrency=1, queue_size=1)
    with Running(assistant, settings) as running:
        url = f"{running.url}/v1/chat/completions"
        body = {"model": "small", "messages": [{"role": "user", "content": "hello"}]}
        results: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: results.append(httpx.post(url, json=body, timeout=30)))
                   for _ in range(2)]
        for thread in threads:  # one answering, one waiting: the queue is full
            thread.start()
        deadline = time.monotonic() + 10
        while 'assistant_queue_depth{queue="models"} 1.0' not in httpx.get(running.url + "/metrics").text:
            assert time.monotonic() < deadline, "the second request never queued"
            time.sleep(0.02)
        refused = httpx.post(url, json=body, timeout=30)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"
        gate.set()
        for thread in threads:
            thread.join()
        assert [response.status_code for response in results] == [200, 200]
        assert httpx.post(url, json=body, timeout=30).status_code == 200, "the queue drains"


class BrokenModel(FakeChatModel):
    """Streams two words, then fails like a crashed backend."""

    def stream(self, messages: Any, **options: Any) -> Iterator[Any]:
        from models.base import TextDelta

        yield TextDelta("partial")
        yield TextDelta(" answer")
        raise RuntimeError("the backend crashed")


def _assistant_with(tmp_path: Path, small: FakeChatModel) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    return Assistant.from_parts(small, FakeChatModel(name="large"), FakeEmbedder(), None, settings,
                                tmp_path / "threads.sqlite")


def test_an_error_after_the_stream_began_is_an_sse_error_event_then_done(tmp_path: Path) -> None:
    instance = _assistant_with(tmp_path, BrokenModel(name="small"))
    with Running(instance, ServerSettings()) as running:
        body = {"stream": True, "messages": [{"role": "user", "content": "Write a poem about rivers."}]}
        with httpx.stream("POST", f"{running.url}/v1/chat/completions", json=body, timeout=30) as response:
            assert response.status_code == 200
            blocks = [block for block in b"".join(response.iter_bytes()).decode().split("\n\n") if block]
    assert blocks[-1] == "data: [DONE]"
    assert all(block.startswith("data: ") for block in blocks)
    error = json.loads(blocks[-2][6:])
    assert "the backend crashed" in error["error"]["message"]
    assert any('"partial"' in block for block in blocks)
    instance.close()


def test_schemathesis_finds_no_server_error(server: Running) -> None:
    import subprocess
    import sys

    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
               "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "40",
               "--request-timeout", "20", "--suppress-health-check", "all"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600,
                               env={**__import__("os").environ, "NO_COLOR": "1"})
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "/v1/chat/completions" in completed.stdout
