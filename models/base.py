"""The chat-model interface every backend implements, and the usage record every call returns."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


class Message(TypedDict):
    """One chat message, as the OpenAI API spells it."""

    role: Role
    content: str


@dataclass(frozen=True)
class Usage:
    """What one model call consumed. FLOPs ~ 2 x parameters x tokens; money from the tier's price."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    wall_seconds: float
    cpu_seconds: float
    parameters: int
    price_per_million_tokens: float

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def flops(self) -> float:
        """Estimated floating-point operations: 2 x parameters x tokens processed."""
        return 2.0 * self.parameters * self.total_tokens

    @property
    def cost_usd(self) -> float:
        """Money cost at the tier's price per million tokens."""
        return self.total_tokens * self.price_per_million_tokens / 1_000_000

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict including the derived totals."""
        data = asdict(self)
        data.update(total_tokens=self.total_tokens, flops=self.flops, cost_usd=self.cost_usd)
        return data


@dataclass(frozen=True)
class Completion:
    """The result of one chat call: text, why it stopped, what it cost and how sure the model was."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    token_probabilities: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "token_probabilities": list(self.token_probabilities),
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
    ) -> Completion:
        """Answer the conversation; ``json_schema`` constrains the output to JSON matching it."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Iterator[StreamItem]:
        """Like :meth:`chat`, yielding text deltas and finally the ``Completion``."""
        ...


def collect_stream(items: Iterator[StreamItem]) -> Completion:
    """Drain a stream and return its final ``Completion``."""
    final: Completion | None = None
    for item in items:
        if isinstance(item, Completion):
            final = item
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
