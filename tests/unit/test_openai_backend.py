"""The OpenAI-compatible backend against an in-process fake server (httpx.MockTransport)."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from models.base import Completion, TextDelta
from models.errors import EndpointError
from models.openai_backend import OpenAICompatibleModel

MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


def _model(handler: Any, **kwargs: Any) -> OpenAICompatibleModel:
    return OpenAICompatibleModel("http://endpoint.test/v1", name="large", remote_model="big", api_key="k",
                                 parameters=1000, transport=httpx.MockTransport(handler), **kwargs)


def _body(text: str = "hi", logprobs: bool = True) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": "stop"}
    if logprobs:
        choice["logprobs"] = {"content": [{"token": "hi", "logprob": math.log(0.5)}]}
    return {"choices": [choice], "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}


def test_chat_request_and_response() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_body())

    completion = _model(handler).chat(MESSAGES, max_tokens=5, stop=["\n"])
    payload = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer k"
    assert payload["model"] == "big" and payload["max_tokens"] == 5 and payload["stop"] == ["\n"]
    assert completion.text == "hi"
    assert completion.token_probabilities == pytest.approx([0.5])
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 1)
    assert completion.usage.flops == 2 * 1000 * 8


def test_refused_logprobs_are_dropped_and_remembered() -> None:
    payloads: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        payloads.append(payload)
        if payload.get("logprobs"):
            return httpx.Response(500, text="logprobs is not supported for models created with logits_all=False")
        return httpx.Response(200, json=_body(logprobs=False))

    model = _model(handler)
    assert model.chat(MESSAGES).token_probabilities == []
    model.chat(MESSAGES)
    assert [("logprobs" in p) for p in payloads] == [True, False, False]


def test_json_schema_falls_back_to_json_object() -> None:
    formats: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        response_format = json.loads(request.content)["response_format"]
        formats.append(response_format["type"])
        if response_format["type"] == "json_schema":
            return httpx.Response(422, text="response_format.type: input should be 'text' or 'json_object'")
        assert response_format["schema"] == {"type": "object"}
        return httpx.Response(200, json=_body('{"a": 1}'))

    assert _model(handler).chat(MESSAGES, json_schema={"type": "object"}).text == '{"a": 1}'
    assert formats == ["json_schema", "json_object"]


def test_stream_with_usage_chunk() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream_options"] == {"include_usage": True}
        events = [
            {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
            {"choices": [{"delta": {"content": "Hel"}, "finish_reason": None}]},
            {"choices": [{"delta": {"content": "lo"}, "finish_reason": "length"}]},
            {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
        ]
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    items = list(_model(handler).stream(MESSAGES))
    assert [item.text for item in items if isinstance(item, TextDelta)] == ["Hel", "lo"]
    final = items[-1]
    assert isinstance(final, Completion)
    assert (final.text, final.finish_reason, final.usage.total_tokens) == ("Hello", "length", 5)


def test_stream_error_event_raises() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text='data: {"error": {"message": "boom"}}\n\ndata: [DONE]\n\n')

    with pytest.raises(EndpointError, match="boom"):
        list(_model(handler).stream(MESSAGES))


def test_unreachable_endpoint_says_how_to_fix() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(EndpointError) as caught:
        _model(handler).chat(MESSAGES)
    assert "models.large.source" in caught.value.hint


def test_unauthorised_hint_mentions_key() -> None:
    with pytest.raises(EndpointError) as caught:
        _model(lambda request: httpx.Response(401, text="bad key")).chat(MESSAGES)
    assert "api_key" in caught.value.hint


def test_cached_prompt_tokens_reported_by_the_server_are_not_counted_as_computed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = _body()
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": 5}
        return httpx.Response(200, json=body)

    usage = _model(handler).chat(MESSAGES).usage
    assert (usage.prompt_tokens, usage.evaluated_prompt_tokens) == (7, 2)
    assert usage.flops == 2 * 1000 * 3 and usage.nominal_flops == 2 * 1000 * 8
    assert usage.cost_usd == usage.total_tokens * usage.price_per_million_tokens / 1e6  # money: every token sent


PREFILLED: list[Any] = [{"role": "user", "content": "Count to five."}, {"role": "assistant", "content": "1, 2, 3,"}]


def _stream_of(*pieces: str) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        events = [{"choices": [{"delta": {"content": piece}, "finish_reason": None}]} for piece in pieces]
        events.append({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
    return handler


@pytest.mark.parametrize("pieces", [("1, 2, 3, 4", ", 5"), ("1, ", "2, 3,", " 4, 5"), (" 4, 5",)],
                         ids=["echoed-in-the-first-delta", "echoed-over-several-deltas", "not-echoed"])
def test_a_continued_assistant_message_yields_only_the_continuation(pieces: tuple[str, ...]) -> None:
    """A final assistant message is a prefill the model continues (the word-problem working sends its text so far
    that way). llama.cpp's server sends the prefill back ahead of the continuation; other servers do not. Either
    way the caller gets the continuation only: appending the echo doubled the working at every calculator result
    until the prompt outgrew the context (a 5,909-token prompt on a 4,096-token slot)."""
    items = list(_model(_stream_of(*pieces)).stream(PREFILLED))
    deltas = "".join(item.text for item in items if isinstance(item, TextDelta))
    final = items[-1]
    assert isinstance(final, Completion)
    assert deltas == final.text == " 4, 5"


def test_a_continued_assistant_message_without_streaming_returns_only_the_continuation() -> None:
    echoed = _model(lambda request: httpx.Response(200, json=_body("1, 2, 3, 4, 5"))).chat(PREFILLED)
    plain = _model(lambda request: httpx.Response(200, json=_body(" 4, 5"))).chat(PREFILLED)
    assert echoed.text == plain.text == " 4, 5"
