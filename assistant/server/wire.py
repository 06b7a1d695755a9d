"""The OpenAI chat wire format: request objects, and the completion bodies, chunks and headers of an answer."""

from __future__ import annotations

import json
import time
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.core.answer import Answer
from assistant.core.text import normalize_question
from assistant.core.threads import THREAD_ID_PATTERN
from models.base import Completion, Message, Tool


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FunctionCall(BaseModel):
    """The function an earlier assistant turn called: its name and its arguments as JSON text."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    arguments: str | dict[str, Any] = Field("{}", description="JSON text (an object is accepted and written out).")

    @field_validator("arguments")
    @classmethod
    def _as_text(cls, arguments: str | dict[str, Any]) -> str:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        if len(text) > 100_000:
            raise ValueError("the arguments are longer than 100,000 characters")
        return text


class ToolCallRecord(BaseModel):
    """One entry of an assistant message's ``tool_calls`` (functions only)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field("", max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One OpenAI chat message (text content only; an assistant turn may carry the tool calls it made)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallRecord] | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, max_length=200)

    def text(self) -> str:
        """The message's text, joining text parts of a multi-part content list."""
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""

    @field_validator("content")
    @classmethod
    def _valid_text(cls, content: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        """Refuse text that is not Unicode (a lone surrogate such as \\ud800 cannot be encoded)."""
        texts = [content] if isinstance(content, str) else [str(part.get("text", "")) for part in content or []]
        if not all(_is_utf8(text) for text in texts):
            raise ValueError("the message is not valid Unicode (it holds a lone surrogate)")
        return content


class FunctionSpec(BaseModel):
    """An OpenAI function definition."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = Field(None, max_length=4000)
    parameters: dict[str, Any] | None = None


class ToolSpec(BaseModel):
    """An OpenAI tool definition (functions only)."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedFunction(BaseModel):
    """``{"name": ...}`` of a ``tool_choice`` that names a function."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


class NamedToolChoice(BaseModel):
    """``tool_choice: {"type": "function", "function": {"name": ...}}``: the model must call that function."""

    type: Literal["function"] = "function"
    function: NamedFunction


class ChatRequest(BaseModel):
    """The subset of the OpenAI chat-completions request this server honours (other fields are accepted)."""

    model_config = ConfigDict(extra="allow")

    model: str = "assistant"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False, description=(
        "A tier asked directly: its sampling temperature. Model assistant: chat answers are sampled at it (the page's "
        "Regenerate asks for a different answer); documents answers and the calculator stay greedy."))
    thread_id: str | None = Field(None, pattern=THREAD_ID_PATTERN)
    escalation: Literal["auto", "never", "always"] | None = None
    answer_with: Literal["small", "large"] | None = Field(None, description=(
        "Model assistant only: this model answers the question as a chat, with no routing, tools or escalation, "
        "and the turn is kept in the thread like any other (a person's model choice on the page)."))
    cost_cap_usd: float | None = Field(None, ge=0, allow_inf_nan=False, description=(
        "Most this turn may spend, in dollars: the large model is not called when it would pass it."))
    stream_drafts: bool = Field(False, description=(
        "Stream drafts as they are written, with an x_assistant replace event when one is discarded (the page does); "
        "otherwise documents answers are streamed once final, so the content deltas add up to the stored answer."))
    stream_stages: bool = Field(False, description=(
        "Stream what the turn is doing before and between its words as x_assistant stage events (\"searching your "
        "documents\", \"asking the larger model\"; the page does). The stream then starts at once, so an error "
        "that follows (a context overflow) is reported in the stream rather than as an HTTP status."))
    regenerate: bool = Field(False, description=(
        "Answer again in place of the thread's last turn (model assistant, with a thread id)."))
    edit_turn: int | None = Field(None, ge=0, le=1_000_000, description=(
        "Answer this question in place of that turn of the thread (0 is the first) and drop the turns after it: "
        "an edited question forks the thread there (model assistant, with a thread id)."))
    tools: list[ToolSpec] | None = Field(None, max_length=64, description=(
        "Functions the model may call (models small and large; the assistant routes to its own tools)."))
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None

    def tool_definitions(self) -> list[Tool] | None:
        """The tools to offer the model, as plain dicts (None when there are none or tool_choice is none)."""
        if not self.tools or self.tool_choice == "none":
            return None
        return [tool.model_dump(exclude_none=True) for tool in self.tools]

    def forced_call_schema(self) -> dict[str, Any] | None:
        """For ``tool_choice`` "required" or a named function: the JSON schema of one call, which the model's
        output is constrained to (a small model then cannot answer in prose or invent a tool name)."""
        if not self.tools or self.tool_choice in (None, "auto", "none"):
            return None
        names = [tool.function.name for tool in self.tools]
        if isinstance(self.tool_choice, NamedToolChoice):
            chosen = self.tool_choice.function.name
            if chosen not in names:
                raise ValueError(f"tool_choice names {chosen!r}, which is not among the tools")
            names = [chosen]
        return {"type": "object", "properties": {"name": {"type": "string", "enum": names},
                                                 "arguments": {"type": "object"}},
                "required": ["name", "arguments"]}


def direct_messages(messages: list[ChatMessage]) -> list[Message]:
    """The conversation for a tier: roles kept (developer becomes system), text normalised, tool calls and tool
    results carried through."""
    converted: list[Message] = []
    for message in messages:
        role = {"developer": "system"}.get(message.role, message.role)
        item: Message = {"role": role, "content": normalize_question(message.text())}  # type: ignore[typeddict-item]
        if role == "assistant" and message.tool_calls:
            item["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if role == "tool" and message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        converted.append(item)
    return converted


def header_value(text: str) -> str:
    """``text`` safe for an HTTP header: percent-encoded outside printable ASCII (a CR/LF or NUL from a document
    id can neither end the header nor inject another; the comma between ids stays)."""
    return quote(text, safe=" !#$&'()*+,/:;=?@[]^_`{|}~-.")


def answer_usage(answer: Answer) -> dict[str, int]:
    """The OpenAI usage record of a turn: every model call's tokens."""
    total = answer.cost.total
    prompt, completion = total.prompt_tokens, total.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_usage(completion: Completion) -> dict[str, int]:
    """The OpenAI usage record of one model call."""
    return {"prompt_tokens": completion.usage.prompt_tokens, "completion_tokens": completion.usage.completion_tokens,
            "total_tokens": completion.usage.total_tokens}


def usage_chunk(request_id: str, model: str, usage: dict[str, int]) -> bytes:
    """The last chunk before ``[DONE]`` when ``stream_options.include_usage`` is set: no choices, full usage."""
    chunk = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
             "choices": [], "usage": usage}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def answer_metadata(answer: Answer, persisted: bool) -> dict[str, Any]:
    """The ``x_assistant`` body key: the answer's details and its thread (None when the turn is not kept)."""
    return answer.view(answer.thread_id if persisted else None).to_dict()


def answer_headers(answer: Answer, persisted: bool) -> dict[str, str]:
    """The ``X-Assistant-*`` headers of an unstreamed answer."""
    cited = ",".join(source.chunk_id for source in answer.used_sources)
    headers = {
        "X-Assistant-Route": answer.route, "X-Assistant-Escalated": str(answer.escalated).lower(),
        "X-Assistant-Confidence": f"{answer.confidence:.4f}",
        "X-Assistant-Cost-USD": f"{answer.cost.total.cost_usd:.8f}",
        "X-Assistant-Sources": header_value(cited),
    }
    if persisted:
        headers["X-Assistant-Thread-Id"] = answer.thread_id
    return headers


def completion_body(request_id: str, model: str, text: str, usage: dict[str, int],
                     metadata: dict[str, Any] | None, finish_reason: str, working: str = "") -> dict[str, Any]:
    """A chat.completion body; a word problem's working goes in ``reasoning_content``, beside the answer (the field
    llama.cpp's server, vLLM and DeepSeek's API use for a reply's reasoning)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if working:
        message["reasoning_content"] = working
    body: dict[str, Any] = {
        "id": request_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
    }
    if metadata is not None:
        body["x_assistant"] = metadata
    return body


def chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None = None,
           extra: dict[str, Any] | None = None) -> bytes:
    """One server-sent ``chat.completion.chunk``; ``extra`` adds top-level keys (``x_assistant``)."""
    body: dict[str, Any] = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if extra:
        body.update(extra)
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()
