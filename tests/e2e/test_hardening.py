"""Regression tests for the outside security probe and review (issue #20): each failed on the main it was filed on.

Fakes stand in for the models; the server runs over a real socket. Ordering waits for events (a model that has
started generating, a queue that has filled) instead of fixed sleeps.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from assistant.api import Assistant
from assistant.core.settings import ServerSettings, Settings
from models.base import Message, StreamItem
from models.errors import ContextOverflowError
from models.fake import FakeChatModel
from retrieval.embedders import FakeEmbedder
from tests.servers import SMALL_WRITES_CHAT, GatedModel, Running

pytestmark = pytest.mark.usefixtures("untrained_escalation")  # fake models: see tests/conftest.py

CHAT = "/v1/chat/completions"


class OverflowingModel(FakeChatModel):
    """Raises like llama.cpp when the prompt is longer than 2,000 characters."""

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[StreamItem]:
        if sum(len(message["content"]) for message in messages) > 2000:
            raise ContextOverflowError("the prompt does not fit the small model's context: Requested tokens (5000) "
                                       "exceed context window of 4096", "shorten the message")
        yield from super().stream(messages, **options)


def _assistant(tmp_path: Path, small: FakeChatModel, large: FakeChatModel | None = None) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    return Assistant.from_parts(small, large or FakeChatModel(name="large"), FakeEmbedder(), None, settings,
                                tmp_path / "threads.sqlite")


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Assistant, GatedModel, GatedModel]]:
    small, large = GatedModel("small"), GatedModel("large")
    instance = _assistant(tmp_path, small, large)
    yield instance, small, large
    instance.close()


def _ask(model: str = "assistant", content: str = "Write a long story about a dragon.", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def _is_openai_error(response: httpx.Response) -> bool:
    error = response.json().get("error")
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


# ---- finding 2: one cancellable, time-limited streaming path for every model name -------------------------------

@pytest.mark.parametrize("model", ["small", "large", "assistant"])
def test_every_model_stops_generating_when_the_client_leaves_and_frees_its_slot(
        gated: tuple[Assistant, GatedModel, GatedModel], model: str) -> None:
    instance, small, large = gated
    tier = large if model == "large" else small
    with Running(instance, ServerSettings(concurrency=1, queue_size=1)) as running:
        with httpx.stream("POST", running.url + CHAT, json=_ask(model, stream=True), timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content": " word2"' in line:
                    break
        closed_at = tier.produced
        assert tier.stopped.wait(5), "generation went on after the client left"
        stopped_at = tier.produced
        assert stopped_at - closed_at <= 50, (closed_at, stopped_at)  # 50 words = 1 s at 20 ms a word (S13)
        tier.started.clear()
        after = httpx.post(running.url + CHAT, json=_ask("small", "next", max_tokens=2), timeout=30)
        assert after.status_code == 200 and small.produced >= 2, "the slot was not given back"
        assert tier.produced - stopped_at <= 2 + (2 if tier is small else 0)


@pytest.mark.parametrize("model", ["small", "assistant"])
def test_every_model_honours_the_time_limit(gated: tuple[Assistant, GatedModel, GatedModel], model: str) -> None:
    instance, small, _ = gated
    with Running(instance, ServerSettings(request_timeout_s=0.5)) as running:
        plain = httpx.post(running.url + CHAT, json=_ask(model), timeout=30)
        assert plain.status_code == 504 and "0.5 s limit" in plain.json()["error"]["message"]
        assert small.stopped.wait(5)
        with httpx.stream("POST", running.url + CHAT, json=_ask(model, stream=True), timeout=30) as response:
            blocks = [block for block in response.read().decode().split("\n\n") if block]
        assert blocks[-1] == "data: [DONE]"
        assert json.loads(blocks[-2][6:])["error"]["type"] == "timeout_error"
        assert small.stopped.wait(5)
        assert small.produced < 100, "generation ran past the limit"


def test_a_direct_tier_holds_its_slot_until_generation_stops(gated: tuple[Assistant, GatedModel, GatedModel]) -> None:
    instance, small, _ = gated
    small.words = 60
    with Running(instance, ServerSettings(concurrency=1, queue_size=0)) as running:
        results: list[httpx.Response] = []
        first = threading.Thread(target=lambda: results.append(
            httpx.post(running.url + CHAT, json=_ask("small"), timeout=30)))
        first.start()
        assert small.started.wait(5)
        refused = httpx.post(running.url + CHAT, json=_ask("large", "hi"), timeout=30)
        assert refused.status_code == 429 and _is_openai_error(refused)
        first.join()
        assert results[0].status_code == 200


def test_max_tokens_is_honoured_and_a_cut_answer_says_length(gated: tuple[Assistant, GatedModel, GatedModel]) -> None:
    instance, _, _ = gated
    with Running(instance, ServerSettings()) as running:
        for model in ("small", "assistant"):
            body = httpx.post(running.url + CHAT, json=_ask(model, max_tokens=5), timeout=30).json()
            assert body["choices"][0]["finish_reason"] == "length", model
            assert body["usage"]["completion_tokens"] == 5, model
            with httpx.stream("POST", running.url + CHAT, json=_ask(model, max_tokens=5, stream=True),
                              timeout=30) as response:
                finishes = [json.loads(line[6:])["choices"][0]["finish_reason"] for line in response.iter_lines()
                            if line.startswith("data: {") and '"choices": [{' in line]
            assert finishes[-1] == "length", model


# ---- finding 3: /metrics behind the key ---------------------------------------------------------------------------

def test_metrics_need_the_key_when_one_is_set(gated: tuple[Assistant, GatedModel, GatedModel]) -> None:
    instance, _, _ = gated
    with Running(instance, ServerSettings(api_key=SecretStr("s3cret"))) as running:
        assert httpx.get(running.url + "/metrics").status_code == 401
        assert httpx.get(running.url + "/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


# ---- finding 4: long calculations have their own bounded line ------------------------------------------------------

def test_long_calculations_do_not_stall_small_arithmetic(tmp_path: Path) -> None:
    instance = _assistant(tmp_path, FakeChatModel(name="small"))
    slow = "solve x^7 + 3*x^5 - 2*x^3 + x - 7 = 0"  # killed at the calculator's 1.5 s limit
    with Running(instance, ServerSettings(calculator_concurrency=1, calculator_queue_size=4)) as running:
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(
            httpx.post(running.url + CHAT, json=_ask(content=slow), timeout=60).status_code)) for _ in range(12)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while 'assistant_queue_depth{queue="calculator"} 4.0' not in httpx.get(running.url + "/metrics").text:
            assert time.monotonic() < deadline, "the calculator's line never filled"
            time.sleep(0.02)
        quick = httpx.post(running.url + CHAT, json=_ask(content="What is 2+2?"), timeout=60)
        pending = sum(thread.is_alive() for thread in threads)
        assert quick.status_code == 200 and quick.json()["choices"][0]["message"]["content"] == "4"
        assert pending >= 4, "2+2 waited behind the long calculations"
        for thread in threads:
            thread.join()
        assert statuses.count(429) == 7 and statuses.count(200) == 5
    instance.close()


# ---- finding 6: clean, OpenAI-shaped 4xx for bad input --------------------------------------------------------

def test_bad_input_gets_a_clean_openai_shaped_4xx(tmp_path: Path) -> None:
    instance = _assistant(tmp_path, OverflowingModel(name="small"))
    with Running(instance, ServerSettings()) as running:
        url = running.url + CHAT
        nan = httpx.post(url, content=b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
                         headers={"Content-Type": "application/json"})
        assert nan.status_code == 400 and _is_openai_error(nan) and "temperature" in nan.text
        surrogate = httpx.post(url, content=b'{"messages": [{"role": "user", "content": "a \\ud800 b"}]}',
                               headers={"Content-Type": "application/json"})
        assert surrogate.status_code == 400 and _is_openai_error(surrogate)
        for model in ("assistant", "small"):
            long = httpx.post(url, json=_ask(model, "Tell me about " + "the sea and " * 400))
            assert long.status_code == 400 and long.json()["error"]["code"] == "context_length_exceeded", model
        for response, status in ((httpx.post(url, json={"messages": []}), 400),
                                 (httpx.post(url, json=_ask("gpt-4")), 404),
                                 (httpx.post(url, json=_ask(max_tokens=100_000)), 400),
                                 (httpx.post(url, content=b"{", headers={"Content-Type": "application/json"}), 400),
                                 (httpx.post(url, content=b"x" * 70_000), 413),
                                 (httpx.get(running.url + "/nowhere"), 404)):
            assert response.status_code == status and _is_openai_error(response), response.text
    instance.close()


# ---- finding 7: the smaller ones ------------------------------------------------------------------------------

def test_a_slowly_sent_body_is_cut_off(tmp_path: Path) -> None:
    instance = _assistant(tmp_path, FakeChatModel(name="small"))
    with Running(instance, ServerSettings(body_timeout_s=1.0)) as running, \
            socket.create_connection(("127.0.0.1", running.port)) as connection:
        connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n")
        connection.settimeout(10)
        reply = b""
        for _ in range(200):  # 8 bytes at a time until the server answers
            try:
                connection.sendall(b'{"a": 1,')
            except OSError:
                break
            connection.settimeout(0.05)
            try:
                reply += connection.recv(4096)
            except TimeoutError:
                continue
            if reply:
                break
        connection.settimeout(10)
        while b"\r\n\r\n" not in reply:
            reply += connection.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408")
    instance.close()


def test_anonymous_turns_are_not_stored(tmp_path: Path) -> None:
    instance = _assistant(tmp_path, FakeChatModel(name="small"))
    with Running(instance, ServerSettings()) as running:
        anonymous = httpx.post(running.url + CHAT, json=_ask(content="Tell me a joke."))
        assert anonymous.status_code == 200 and "X-Assistant-Thread-Id" not in anonymous.headers
        assert anonymous.json()["x_assistant"]["thread_id"] is None
        with httpx.stream("POST", running.url + CHAT, json=_ask(content="Tell me another joke.", stream=True)) as r:
            assert "X-Assistant-Thread-Id" not in r.headers
            r.read()
        named = httpx.post(running.url + CHAT, json=_ask(content="Remember this."), headers={"X-Thread-Id": "kept"})
        assert named.headers["X-Assistant-Thread-Id"] == "kept"
    with sqlite3.connect(tmp_path / "threads.sqlite") as database:
        threads = {row[0] for row in database.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == {"kept"}
    instance.close()


def test_thread_ids_and_authorization_headers_are_validated(tmp_path: Path) -> None:
    instance = _assistant(tmp_path, FakeChatModel(name="small"))
    with Running(instance, ServerSettings(api_key=SecretStr("s3cret"))) as running:
        bearer = {"Authorization": "Bearer s3cret"}
        huge = httpx.post(running.url + CHAT, json=_ask(content="hi"), headers=bearer | {"X-Thread-Id": "x" * 60_000})
        assert huge.status_code in (400, 431) and "x" * 200 not in str(huge.headers)
        odd = httpx.post(running.url + CHAT, json=_ask(content="hi"), headers=bearer | {"X-Thread-Id": "a b<c>"})
        assert odd.status_code == 400 and _is_openai_error(odd)
        bare = httpx.post(running.url + CHAT, json=_ask(content="hi"), headers={"Authorization": "s3cret"})
        assert bare.status_code == 401
        lower = httpx.post(running.url + CHAT, json=_ask(content="hi"), headers={"Authorization": "bearer s3cret"})
        assert lower.status_code == 200
    instance.close()


@pytest.mark.parametrize("question", ["What is 2+2?\x00", "What is ２＋２?", "What is\u200b 2+2?"])
def test_odd_characters_do_not_keep_arithmetic_from_the_calculator(tmp_path: Path, question: str) -> None:
    large = FakeChatModel(name="large")
    instance = _assistant(tmp_path, FakeChatModel(name="small"), large)
    with Running(instance, ServerSettings()) as running:
        body = httpx.post(running.url + CHAT, json=_ask(content=question)).json()
    assert body["choices"][0]["message"]["content"] == "4"
    assert body["x_assistant"]["route_stage"] == "calculator" and not large.calls
    instance.close()
