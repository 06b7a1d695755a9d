"""A deterministic, scripted chat model for fast tests (no weights, no randomness)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.base import (
    Completion,
    FinishReason,
    Message,
    StreamItem,
    TextDelta,
    Tool,
    ToolCall,
    Usage,
    parse_tool_calls,
    tool_names,
)

Responder = Callable[[Sequence[Message]], str]


@dataclass(frozen=True)
class FakeCall:
    """What one call to the fake received."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    stop: list[str]
    json_schema: dict[str, Any] | None


@dataclass
class _Scripted:
    text: str
    probability: float


@dataclass
class FakeChatModel:
    """Answers with queued responses (``enqueue``), else ``responder(messages)``, else echoes the last message.

    Tokens are whitespace-separated words; every token gets the scripted probability. Calls are recorded in
    ``calls`` so tests can assert on prompts.
    """

    name: str = "fake"
    parameters: int = 1_000_000
    price_per_million_tokens: float = 0.0
    responder: Responder | None = None
    default_probability: float = 0.9
    calls: list[FakeCall] = field(default_factory=list)
    _queue: deque[_Scripted] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, *texts: str, probability: float | None = None) -> FakeChatModel:
        """Script the next responses, in order."""
        for text in texts:
            self._queue.append(_Scripted(text, self.default_probability if probability is None else probability))
        return self

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
        """Answer from the script (see ``ChatModel.chat``); with ``tools``, scripted ``<tool_call>`` blocks become
        tool calls as they do for a real model."""
        with self._lock:
            self.calls.append(FakeCall([dict(m) for m in messages], max_tokens, temperature,  # type: ignore[misc]
                                       list(stop or []), json_schema))
            scripted = self._next(messages)
        words = scripted.text.split()
        finish: FinishReason = "length" if len(words) > max_tokens else "stop"
        words = words[:max_tokens]
        text = " ".join(words) if finish == "length" else scripted.text
        for marker in stop or []:
            if marker and marker in text:
                text = text[: text.index(marker)]
        usage = Usage(
            model=self.name,
            prompt_tokens=sum(len(message["content"].split()) for message in messages),
            completion_tokens=len(words),
            wall_seconds=0.0,
            cpu_seconds=0.0,
            parameters=self.parameters,
            price_per_million_tokens=self.price_per_million_tokens,
        )
        calls: list[ToolCall] = []
        if tools:
            text, calls = parse_tool_calls(text, tool_names(tools))
        return Completion(text=text, finish_reason="tool_calls" if calls else finish, usage=usage,
                          token_probabilities=[scripted.probability] * len(words), tool_calls=calls)

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
        """Yield the scripted answer word by word, then the ``Completion``."""
        completion = self.chat(messages, max_tokens=max_tokens, temperature=temperature, stop=stop,
                               json_schema=json_schema, tools=tools)
        if completion.text:
            for index, word in enumerate(completion.text.split(" ")):
                yield TextDelta(word if index == 0 else " " + word)
        yield completion

    def _next(self, messages: Sequence[Message]) -> _Scripted:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            return _Scripted(self.responder(messages), self.default_probability)
        return _Scripted(messages[-1]["content"] if messages else "", self.default_probability)
