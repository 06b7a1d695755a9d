"""A turn's events as an HTTP answer: read up to the first visible event, the final one, or as server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import HTTPException, Request

from assistant.core.answer import Answer
from assistant.live import REPLACED_NOTE, LiveText
from assistant.metrics import Metrics
from assistant.server.errors import timeout_message
from assistant.server.wire import answer_metadata, answer_usage, chunk, completion_usage, usage_chunk
from assistant.stages import stage_after
from models.base import Completion
from models.errors import ContextOverflowError

VISIBLE_EVENTS = ("token", "working", "reset", "escalate", "answer", "completion")
"""Events that put something on a stream: before the first of them an error can still be an HTTP status."""
STAGE_EVENTS = ("start", "step")
"""Events that put a stage on the stream of a client that asked for stages (``stream_stages``)."""


async def events_until(events: AsyncGenerator[dict[str, Any], None], request: Request, timeout_s: float,
                        until: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """The events up to and including the first whose type is in ``until`` (or all, if the turn ends first); None
    when the client disconnected meanwhile (the turn is then cancelled). The turn's own errors propagate (a context
    overflow becomes a 400, the time limit a 504); ``events`` stays open for the caller to go on reading."""
    collected: list[dict[str, Any]] = []

    async def consume() -> list[dict[str, Any]]:
        while True:
            try:
                event = await anext(events)
            except StopAsyncIteration:
                return collected
            collected.append(event)
            if event["type"] in until:
                return collected

    task = asyncio.ensure_future(consume())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if done:
                return task.result()
            if await request.is_disconnected():
                return None
    except TimeoutError:
        raise HTTPException(504, timeout_message(timeout_s)) from None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def final_event(events: AsyncGenerator[dict[str, Any], None], request: Request,
                       timeout_s: float) -> dict[str, Any] | None:
    """The last ``answer``/``completion`` event; None when the client disconnected first (the turn is cancelled)."""
    collected = await events_until(events, request, timeout_s, ("answer", "completion"))
    if collected is None:
        return None
    if not collected or collected[-1]["type"] not in ("answer", "completion"):
        raise RuntimeError("the turn ended without an answer")
    return collected[-1]


async def replayed(head: list[dict[str, Any]],
                    events: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
    """``head`` (events already read), then the rest of ``events``; closing this closes ``events``."""
    try:
        for event in head:
            yield event
        async for event in events:
            yield event
    finally:
        await events.aclose()


async def sse(events: AsyncGenerator[dict[str, Any], None], model: str, request_id: str, include_usage: bool,
               metrics: Metrics, persisted: bool, timeout_s: float, live: LiveText | None, *,
               stages: bool = False) -> AsyncIterator[bytes]:
    """SSE chunks: role, the answer's text as it is written, the final chunk, usage, [DONE].

    A turn's text follows ``live`` (:class:`LiveText`): a client that asked for ``stream_drafts`` sees drafts as
    they are written and a chunk whose ``x_assistant`` says ``{"event": "replace", "text": ...}`` when one is
    discarded; any other client is shown a documents answer only when it is final, so the ``content`` deltas add up
    to the stored answer (a chat draft discarded by an escalation is the one exception, and the stream says so in
    its text). With ``stages``, a chunk whose ``x_assistant`` is ``{"event": "stage", ...}`` says what the turn
    does next (:func:`assistant.stages.stage_after`). One path for every model name; an error after the stream began
    is reported in-band, then it ends.
    """
    yield chunk(request_id, model, {"role": "assistant", "content": ""})
    streamed = False
    try:
        async for event in events:
            if stages and (stage := stage_after(event)) is not None:
                yield chunk(request_id, model, {}, extra={"x_assistant": stage.to_dict()})
            for edit in live.feed(event) if live is not None else []:
                if edit.kind == "append":
                    yield chunk(request_id, model, {"content": edit.text})
                else:
                    note = f"\n\n[{REPLACED_NOTE}]\n\n{edit.text}" if live and live.hold_documents else ""
                    yield chunk(request_id, model, {"content": note} if note else {},
                                 extra={"x_assistant": {"event": "replace", "text": edit.text}})
                streamed = True
            if event["type"] == "working":
                yield chunk(request_id, model, {"reasoning_content": event["text"]})
            elif event["type"] == "escalate":
                yield chunk(request_id, model, {},
                             extra={"x_assistant": {"event": "escalate", "reason": event.get("reason", "")}})
            elif event["type"] == "token" and live is None:  # a tier answering directly
                streamed = True
                yield chunk(request_id, model, {"content": event["text"]})
            elif event["type"] == "completion":
                completion: Completion = event["completion"]
                if not streamed and completion.text:  # a reply with tools arrives whole, at the end
                    yield chunk(request_id, model, {"content": completion.text})
                if completion.tool_calls:
                    calls = [{"index": index, **call.to_openai()} for index, call in enumerate(completion.tool_calls)]
                    yield chunk(request_id, model, {"tool_calls": calls})
                yield chunk(request_id, model, {}, completion.finish_reason)
                if include_usage:
                    yield usage_chunk(request_id, model, completion_usage(completion))
            elif event["type"] == "answer":
                answer: Answer = event["answer"]
                metrics.record_answer(answer)
                yield chunk(request_id, model, {}, answer.finish_reason,
                             extra={"x_assistant": answer_metadata(answer, persisted)})
                if include_usage:
                    yield usage_chunk(request_id, model, answer_usage(answer))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # the stream has begun: report the error in-band, then end it cleanly
        message = timeout_message(timeout_s) if isinstance(error, TimeoutError) else f"{type(error).__name__}: {error}"
        kind = "timeout_error" if isinstance(error, TimeoutError) else "server_error"
        code = "context_length_exceeded" if isinstance(error, ContextOverflowError) else None
        payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        yield f"data: {json.dumps(payload)}\n\n".encode()
    finally:
        await events.aclose()
    yield b"data: [DONE]\n\n"
