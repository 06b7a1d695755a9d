"""The chat-model interface every backend implements, and the usage record every call returns."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypedDict, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]
Tool = dict[str, Any]
"""An OpenAI tool definition: ``{"type": "function", "function": {"name", "description", "parameters"}}``."""


class Message(TypedDict):
    """One chat message, as the OpenAI API spells it (``tool_calls`` on an assistant turn that called tools,
    ``tool_call_id`` on the ``tool`` message carrying a result)."""

    role: Role
    content: str
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is a JSON object as text (OpenAI's convention)."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls[]`` entry."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Usage:
    """What one model call consumed. FLOPs ~ 2 x parameters x tokens computed; money from the tier's price.

    ``prompt_tokens`` were sent; ``evaluated_prompt_tokens`` were actually computed (the rest came from a cached
    state of the same prompt head). None means the backend cannot tell, and counts every prompt token.
    """

    model: str
    prompt_tokens: int
    completion_tokens: int
    wall_seconds: float
    cpu_seconds: float
    parameters: int
    price_per_million_tokens: float
    evaluated_prompt_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def computed_prompt_tokens(self) -> int:
        """Prompt tokens the model evaluated (all of them when the backend cannot tell)."""
        return self.prompt_tokens if self.evaluated_prompt_tokens is None else self.evaluated_prompt_tokens

    @property
    def flops(self) -> float:
        """Estimated floating-point operations: 2 x parameters x tokens computed (evaluated prompt + completion)."""
        return 2.0 * self.parameters * (self.computed_prompt_tokens + self.completion_tokens)

    @property
    def nominal_flops(self) -> float:
        """2 x parameters x every token sent and generated, as if no prompt token had been cached."""
        return 2.0 * self.parameters * self.total_tokens

    @property
    def cost_usd(self) -> float:
        """Money cost at the tier's price per million tokens."""
        return self.total_tokens * self.price_per_million_tokens / 1_000_000

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict including the derived totals."""
        data = asdict(self)
        data.update(total_tokens=self.total_tokens, evaluated_prompt_tokens=self.computed_prompt_tokens,
                    flops=self.flops, nominal_flops=self.nominal_flops, cost_usd=self.cost_usd)
        return data


@dataclass(frozen=True)
class Completion:
    """The result of one chat call: text, why it stopped, what it cost and how sure the model was."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    token_probabilities: list[float] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "token_probabilities": list(self.token_probabilities),
            "tool_calls": [call.to_openai() for call in self.tool_calls],
        }


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed text."""

    text: str


StreamItem = TextDelta | Completion
"""``stream`` yields ``TextDelta`` items, then exactly one ``Completion`` holding the full text and usage."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: the one interface the graph, server and eval use for every backend."""

    name: str
    """The tier alias (or a descriptive name) reported in usage records."""

    parameters: int
    """Parameter count used for FLOPs (0 when unknown)."""

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
        """Answer the conversation; ``json_schema`` constrains the output to JSON matching it; with ``tools`` the
        model may answer with ``tool_calls`` instead of text (finish reason ``tool_calls``). When the last message
        is the assistant's, the model goes on writing it (the returned text is what follows its content)."""
        ...

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
        """Like :meth:`chat`, yielding text deltas and finally the ``Completion``."""
        ...


def collect_stream(items: Iterator[StreamItem], on_text: Callable[[str], None] | None = None) -> Completion:
    """Drain a stream and return its final ``Completion``, handing each text delta to ``on_text`` on the way."""
    final: Completion | None = None
    for item in items:
        if isinstance(item, Completion):
            final = item
        elif on_text is not None:
            on_text(item.text)
    if final is None:
        raise RuntimeError("the model's stream ended without a Completion")
    return final


class GenerationCancelledError(Exception):
    """The caller asked generation to stop (the client went away, or a time limit passed)."""


def cancellable(items: Iterator[StreamItem], cancelled: Callable[[], bool]) -> Iterator[StreamItem]:
    """``items`` checked before every token: once ``cancelled()`` is true the model's stream is closed (llama.cpp
    stops generating) and GenerationCancelledError is raised. The one way every caller stops a model."""
    try:
        for item in items:
            if cancelled():
                raise GenerationCancelledError("generation was cancelled")
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def _call_of(payload: Any, names: set[str] | None) -> ToolCall | None:
    """A ToolCall from ``{"name": ..., "arguments": {...}}`` (when ``names`` is given, only for those names)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        return None
    name, arguments = payload["name"], payload.get("arguments", payload.get("parameters", {}))
    if (names is not None and name not in names) or not isinstance(arguments, dict | str):
        return None
    arguments_text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return ToolCall(f"call_{uuid.uuid4().hex[:24]}", name, arguments_text)


def parse_tool_calls(text: str, names: set[str] | None = None) -> tuple[str, list[ToolCall]]:
    """Split a model's reply into its visible text and its tool calls.

    Calls are the ``<tool_call>{"name", "arguments"}</tool_call>`` blocks Hermes-style chat templates (Qwen2.5's
    among them) ask for. Small models often drop the tags, fence the JSON or double its braces, so without tagged
    calls every JSON object in the reply that names one of ``names`` is a call, and the reply has no text.
    """
    calls: list[ToolCall] = []
    kept: list[str] = []
    position = 0
    for match in _TOOL_CALL.finditer(text):
        try:
            call = _call_of(json.loads(match.group(1)), None)
        except ValueError:
            call = None
        if call is None:
            continue
        kept.append(text[position:match.start()])
        position = match.end()
        calls.append(call)
    kept.append(text[position:])
    if calls or names is None:
        return "".join(kept).strip(), calls
    found: list[ToolCall] = []
    decoder = json.JSONDecoder()
    position = 0
    while (start := text.find("{", position)) != -1:
        try:
            payload, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        call = _call_of(payload, names)
        if call is not None:
            found.append(call)
        position = end if call is not None else start + 1
    return ("", found) if found else (text.strip(), [])


def tool_names(tools: Sequence[Tool] | None) -> set[str]:
    """The function names offered in ``tools``."""
    return {str(tool.get("function", {}).get("name")) for tool in tools or []}
