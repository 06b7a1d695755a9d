"""Any OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama, hosted APIs) as a ``ChatModel``.

Token probabilities come from ``logprobs`` when the server supports them (llama-cpp-python's server does
only with ``logits_all``); servers that refuse are remembered and asked without. JSON-schema output uses
OpenAI's ``json_schema`` response format, falling back to llama-cpp-python's ``json_object`` + ``schema``.
When a streaming server reports no usage, completion tokens are the number of content chunks and prompt
tokens are estimated at 4 characters per token. A conversation ending in an assistant message is sent as it is:
llama.cpp's server continues that message (assistant prefill, its default); vLLM does when started with a chat
template that leaves the last message open or asked with ``continue_final_message``; other servers may answer anew,
which a word problem's working (``assistant.word_problem_method = "working"``) needs them not to.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from models.base import Completion, FinishReason, Message, StreamItem, TextDelta, Tool, ToolCall, Usage
from models.errors import EndpointError

_CHARS_PER_TOKEN_ESTIMATE = 4


class OpenAICompatibleModel:
    """A chat model behind an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        remote_model: str = "",
        api_key: str | None = None,
        parameters: int = 0,
        price_per_million_tokens: float = 0.0,
        timeout_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.remote_model = remote_model or name
        self.parameters = parameters
        self.price_per_million_tokens = price_per_million_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                    transport=transport)
        self._logprobs_supported = True
        self._schema_format = "json_schema"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """Answer the conversation (see ``ChatModel.chat``)."""
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        payload = self._payload(messages, max_tokens, temperature, stop, json_schema, stream=False)
        if tools:
            payload["tools"] = list(tools)
        response = self._post(payload, json_schema)
        data = response.json()
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            calls = [ToolCall(str(call.get("id") or ""), str(call["function"]["name"]),
                              str(call["function"].get("arguments") or "{}"))
                     for call in choice["message"].get("tool_calls") or []]
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError) as error:
            raise EndpointError(f"{self.base_url} returned an unexpected body: {str(data)[:200]}",
                                "check that the endpoint speaks the OpenAI chat completions API") from error
        probabilities = _probabilities(choice.get("logprobs"))
        prompt_tokens = int(usage.get("prompt_tokens", _estimate_tokens(messages)))
        completion_tokens = int(usage.get("completion_tokens", len(probabilities)))
        echo = EchoedPrefill(messages)
        return Completion(
            text=echo.feed(text) + echo.flush(),
            finish_reason=_finish_reason(choice.get("finish_reason")),
            usage=self._usage(prompt_tokens, completion_tokens, wall_start, cpu_start, _cached(usage)),
            token_probabilities=probabilities,
            tool_calls=calls,
        )

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Iterator[StreamItem]:
        """Stream text deltas over SSE, then the ``Completion`` (with ``tools``: one non-streamed call)."""
        if tools:
            completion = self.chat(messages, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                   json_schema=json_schema, tools=tools)
            if completion.text:
                yield TextDelta(completion.text)
            yield completion
            return
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        payload = self._payload(messages, max_tokens, temperature, stop, json_schema, stream=True)
        pieces: list[str] = []
        probabilities: list[float] = []
        finish_reason: FinishReason = "stop"
        usage: dict[str, Any] = {}
        content_chunks = 0
        echo = EchoedPrefill(messages)
        for event in self._events(payload, json_schema):
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                received = (choice.get("delta") or {}).get("content") or ""
                if received:
                    content_chunks += 1
                if text := echo.feed(received):
                    pieces.append(text)
                    yield TextDelta(text)
                probabilities.extend(_probabilities(choice.get("logprobs")))
                if choice.get("finish_reason"):
                    finish_reason = _finish_reason(choice["finish_reason"])
        if text := echo.flush():
            pieces.append(text)
            yield TextDelta(text)
        prompt_tokens = int(usage.get("prompt_tokens", _estimate_tokens(messages)))
        completion_tokens = int(usage.get("completion_tokens", len(probabilities) or content_chunks))
        yield Completion(text="".join(pieces), finish_reason=finish_reason,
                         usage=self._usage(prompt_tokens, completion_tokens, wall_start, cpu_start, _cached(usage)),
                         token_probabilities=probabilities)

    def list_remote_models(self) -> list[str]:
        """The model ids the endpoint serves (``GET /models``)."""
        try:
            response = self._client.get("/models")
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        return [str(item.get("id")) for item in response.json().get("data", [])]

    # ---- internals -----------------------------------------------------------------------------

    def _payload(self, messages: Sequence[Message], max_tokens: int, temperature: float,
                 stop: Sequence[str] | None, json_schema: dict[str, Any] | None, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.remote_model,
            "messages": [dict(message) for message in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
        if stop:
            payload["stop"] = list(stop)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if self._logprobs_supported:
            payload["logprobs"] = True
            payload["top_logprobs"] = 1  # llama-cpp-python's server computes logprobs only when this is set
        if json_schema is not None:
            payload["response_format"] = self._response_format(json_schema)
        return payload

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self._schema_format == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}
        return {"type": "json_object", "schema": schema}

    def _post(self, payload: dict[str, Any], json_schema: dict[str, Any] | None) -> httpx.Response:
        status, body, resets = 0, "", 0
        for _attempt in range(4):
            try:
                response = self._client.post("/chat/completions", json=payload)
            except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                status, body = 0, self._after_reset(error, payload, resets)
                resets += 1
                continue
            except httpx.HTTPError as error:
                raise self._unreachable(error) from error
            else:
                if response.is_success:
                    return response
                status, body = response.status_code, response.text
            if not self._downgrade(body, payload, json_schema):
                break
        raise self._http_error(status, body)

    def _events(self, payload: dict[str, Any], json_schema: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
        """The parsed SSE events of one streamed completion, downgrading features the server refuses.

        llama-cpp-python's server without ``logits_all`` resets or silently closes a stream that asks for
        logprobs after sending its headers; such a stream is restarted without logprobs if no text came yet.
        """
        status, body, resets = 0, "", 0
        for _attempt in range(4):
            received = False
            try:
                with self._client.stream("POST", "/chat/completions", json=payload) as response:
                    if response.is_success:
                        for line in response.iter_lines():
                            if not line.startswith("data:"):
                                continue
                            data = line.removeprefix("data:").strip()
                            if data == "[DONE]":
                                return
                            event = json.loads(data)
                            if "error" in event:
                                raise EndpointError(f"{self.base_url} failed mid-stream: {event['error']}",
                                                    "check the endpoint's logs")
                            received = received or any((choice.get("delta") or {}).get("content")
                                                       for choice in event.get("choices") or [])
                            yield event
                        if received or "logprobs" not in payload:
                            return
                        status, body = 0, "stream closed without text or [DONE] while logprobs were requested"
                    else:
                        status, body = response.status_code, response.read().decode(errors="replace")
            except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                if received:
                    raise self._unreachable(error) from error
                status, body = 0, self._after_reset(error, payload, resets)
                resets += 1
                continue
            except httpx.HTTPError as error:
                raise self._unreachable(error) from error
            if not self._downgrade(body, payload, json_schema):
                break
        raise self._http_error(status, body)

    def _after_reset(self, error: httpx.HTTPError, payload: dict[str, Any], resets: int) -> str:
        """Handle a connection dropped before any text: retry once, and stop asking for logprobs.

        A pooled keep-alive connection may have been closed by the server, and llama-cpp-python's
        server drops requests whose logprobs it cannot compute instead of answering with an error.
        """
        if resets >= 1 and "logprobs" not in payload:
            raise self._unreachable(error) from error
        if "logprobs" in payload and resets >= 1:
            self._downgrade("logprobs refused by dropping the connection", payload, None)
        return f"connection dropped: {error}"

    def _downgrade(self, body: str, payload: dict[str, Any], json_schema: dict[str, Any] | None) -> bool:
        """Drop or change an optional request feature the server refused; False if nothing is left to try."""
        lowered = body.lower()
        if "logprobs" in payload and "logprob" in lowered:
            self._logprobs_supported = False
            payload.pop("logprobs")
            payload.pop("top_logprobs", None)
            return True
        if json_schema is not None and self._schema_format == "json_schema" and (
            "response_format" in lowered or "json_schema" in lowered
        ):
            self._schema_format = "json_object"
            payload["response_format"] = self._response_format(json_schema)
            return True
        return False

    def _usage(self, prompt_tokens: int, completion_tokens: int, wall_start: float, cpu_start: float,
               cached_tokens: int | None) -> Usage:
        return Usage(
            model=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            wall_seconds=time.perf_counter() - wall_start,
            cpu_seconds=time.process_time() - cpu_start,
            parameters=self.parameters,
            price_per_million_tokens=self.price_per_million_tokens,
            evaluated_prompt_tokens=None if cached_tokens is None else max(0, prompt_tokens - cached_tokens),
        )

    def _unreachable(self, error: Exception) -> EndpointError:
        return EndpointError(f"cannot reach the {self.name} endpoint at {self.base_url}: {error}",
                             f"start the server, or point models.{self.name}.source at a running one")

    def _http_error(self, status: int, body: str) -> EndpointError:
        hint = "check models.{0}.api_key" if status in (401, 403) else "check the endpoint's logs and model name"
        return EndpointError(f"the {self.name} endpoint answered HTTP {status}: {body[:300]}",
                             hint.format(self.name))


class EchoedPrefill:
    """Drops the prefill a server sends back ahead of its continuation. A final assistant message is the start of
    the reply, which the model continues (llama-cpp-python in process and llama.cpp's server both do); llama.cpp's
    server then sends that start again, glued to the first generated token, where vLLM (``continue_final_message``)
    sends the continuation only. Text is held back only while it could still be the echo."""

    def __init__(self, messages: Sequence[Message]) -> None:
        last = messages[-1] if messages else None
        self._prefill = str(last.get("content") or "") if last is not None and last.get("role") == "assistant" else ""
        self._held = ""
        self._settled = not self._prefill

    def feed(self, text: str) -> str:
        """The part of ``text`` that is the model's continuation (possibly empty for now)."""
        if self._settled:
            return text
        self._held += text
        if self._held.startswith(self._prefill):
            continuation, self._held, self._settled = self._held[len(self._prefill):], "", True
            return continuation
        if self._prefill.startswith(self._held):
            return ""
        return self.flush()

    def flush(self) -> str:
        """Whatever is held back: the stream ended, or it is not the echo."""
        held, self._held, self._settled = self._held, "", True
        return held


def _probabilities(logprobs: Any) -> list[float]:
    if not isinstance(logprobs, dict):
        return []
    content = logprobs.get("content") or []
    return [math.exp(float(item["logprob"])) for item in content if isinstance(item, dict) and "logprob" in item]


def _finish_reason(value: Any) -> FinishReason:
    return value if value in ("length", "tool_calls") else "stop"


def _estimate_tokens(messages: Sequence[Message]) -> int:
    characters = sum(len(message.get("content") or "") for message in messages)
    return max(1, math.ceil(characters / _CHARS_PER_TOKEN_ESTIMATE))


def _cached(usage: dict[str, Any]) -> int | None:
    """Prompt tokens the server says it took from its cache (``usage.prompt_tokens_details.cached_tokens``)."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return int(cached) if isinstance(cached, int | float) else None
