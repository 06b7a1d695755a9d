"""OpenAICompatibleModel against a real `python -m llama_cpp.server` on 127.0.0.1 with the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistant.core.settings import Settings
from models.base import Completion, TextDelta
from models.errors import EndpointError
from models.openai_backend import OpenAICompatibleModel
from models.registry import gguf_path, load_model
from tests.waiting import free_port

QUESTION: list[Any] = [{"role": "user", "content": "Name three primary colors."}]


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "logits_all"])
def llama_server(request: pytest.FixtureRequest, real_settings: Settings,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = gguf_path(real_settings.models["tiny"], real_settings, progress=False)
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", "tiny",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
               "--verbose", "False", "--logits_all", str(request.param)]
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: an unread pipe fills up and wedges the server
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("llama_cpp.server did not come up within 60 s")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def remote(llama_server: str) -> Iterator[OpenAICompatibleModel]:
    model = OpenAICompatibleModel(llama_server, name="tiny", remote_model="tiny", parameters=134_515_008)
    yield model
    model.close()


def test_lists_the_served_model(remote: OpenAICompatibleModel) -> None:
    assert remote.list_remote_models() == ["tiny"]


def test_chat_returns_text_and_real_usage(remote: OpenAICompatibleModel, tiny_model: Any) -> None:
    completion = remote.chat(QUESTION, max_tokens=30)
    assert completion.text.strip()
    # same GGUF chat template on both sides (the server's sampling defaults differ, so texts may too)
    assert completion.usage.prompt_tokens == tiny_model.chat(QUESTION, max_tokens=1).usage.prompt_tokens
    assert 0 < completion.usage.completion_tokens <= 30
    assert completion.usage.flops == 2 * 134_515_008 * completion.usage.total_tokens
    if completion.token_probabilities:  # only with --logits_all
        assert len(completion.token_probabilities) == completion.usage.completion_tokens
        assert all(0.0 <= p <= 1.0 for p in completion.token_probabilities)


def test_probabilities_come_through_when_the_server_has_them(remote: OpenAICompatibleModel,
                                                            llama_server: str) -> None:
    completion = remote.chat(QUESTION, max_tokens=10)
    served_with_logits = remote._logprobs_supported
    assert bool(completion.token_probabilities) == served_with_logits


def test_stream_equals_chat(remote: OpenAICompatibleModel) -> None:
    items = list(remote.stream(QUESTION, max_tokens=30))
    final = items[-1]
    assert isinstance(final, Completion)
    assert "".join(item.text for item in items if isinstance(item, TextDelta)) == final.text
    assert final.text == remote.chat(QUESTION, max_tokens=30).text
    assert final.usage.completion_tokens > 0


def test_json_schema_output(remote: OpenAICompatibleModel) -> None:
    schema = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}},
              "required": ["color"]}
    completion = remote.chat([{"role": "user", "content": "Pick a color as JSON."}], max_tokens=30,
                             json_schema=schema)
    assert json.loads(completion.text)["color"] in {"red", "green", "blue"}


def test_settings_tier_pointing_at_the_endpoint(llama_server: str) -> None:
    settings = Settings.load(None, {"models": {"large": {"source": llama_server, "remote_model": "tiny",
                                                         "parameters": 134_515_008}}})
    model = load_model(settings, "large")
    assert isinstance(model, OpenAICompatibleModel)
    assert model.chat(QUESTION, max_tokens=5).usage.model == "large"


def test_dead_endpoint_is_a_clear_error() -> None:
    model = OpenAICompatibleModel(f"http://127.0.0.1:{free_port()}/v1", name="large", timeout_s=5)
    with pytest.raises(EndpointError, match="cannot reach"):
        model.chat(QUESTION)
