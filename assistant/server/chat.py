"""``POST /v1/chat/completions``: the routed assistant (model ``assistant``) or one tier directly, streamed or not."""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from assistant.admission import Generation
from assistant.core.answer import Answer
from assistant.core.text import normalize_question
from assistant.core.threads import CLIENT_PATTERN, THREAD_ID_PATTERN
from assistant.live import LiveText
from assistant.server.operations import MODELS
from assistant.server.services import ServicesDep
from assistant.server.streaming import STAGE_EVENTS, VISIBLE_EVENTS, events_until, final_event, replayed, sse
from assistant.server.wire import (
    ChatRequest,
    answer_headers,
    answer_metadata,
    answer_usage,
    completion_body,
    completion_usage,
    direct_messages,
)
from models.base import Completion

THREAD_ID = re.compile(THREAD_ID_PATTERN)
CLIENT = re.compile(CLIENT_PATTERN)
MAX_SYSTEM_PROMPT_CHARS = 4000

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request, shared: ServicesDep) -> Response:
    """An OpenAI chat completion; the route, sources, confidence and cost travel in ``x_assistant`` and
    ``X-Assistant-*`` headers; the thread id comes from ``X-Thread-Id`` or the body's ``thread_id``, the tag of a
    new thread from ``X-Assistant-Client`` (default ``api``; the page sends ``web``)."""
    settings, metrics = shared.settings, shared.metrics
    if body.model not in MODELS:
        raise HTTPException(404, f"unknown model {body.model!r}; choose one of {', '.join(MODELS)}")
    requested = body.max_completion_tokens or body.max_tokens
    if requested is not None and requested > settings.max_tokens_cap:
        raise HTTPException(400, f"max_tokens {requested} is over the server's cap {settings.max_tokens_cap}")
    question = normalize_question(next((m.text() for m in reversed(body.messages) if m.role == "user"), ""))
    if not question.strip():
        raise HTTPException(400, "the conversation has no user message with text")
    # the conversation's own instructions (its last system or developer message) guide the assistant's CHAT
    # answers; a tier answering directly gets the messages as they are
    system_prompt = normalize_question(next((m.text() for m in reversed(body.messages)
                                             if m.role in ("system", "developer")), "")).strip()
    if body.model == "assistant" and len(system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
        raise HTTPException(400, f"the system message is longer than {MAX_SYSTEM_PROMPT_CHARS} characters")
    header_thread = request.headers.get("x-thread-id")
    if header_thread is not None and not THREAD_ID.match(header_thread):
        raise HTTPException(400, "X-Thread-Id must be 1-128 letters, digits or . _ : -")
    client = request.headers.get("x-assistant-client", "api").lower()
    if not CLIENT.match(client):
        raise HTTPException(400, "X-Assistant-Client must be 1-32 lower-case letters, digits or -")
    given_thread = header_thread or body.thread_id
    if body.answer_with is not None and body.model != "assistant":
        raise HTTPException(400, f"answer_with needs model assistant (model {body.model} answers directly already)")
    if (body.regenerate or body.edit_turn is not None) and (given_thread is None or body.model != "assistant"):
        raise HTTPException(400, "regenerate and edit_turn need model assistant and a thread id (X-Thread-Id or "
                                 "thread_id)")
    if body.edit_turn is not None:
        record = shared.assistant.thread(str(given_thread))
        if record is None or body.edit_turn >= len(record.turns):
            turns = 0 if record is None else len(record.turns)
            raise HTTPException(400, f"edit_turn {body.edit_turn}: the thread has {turns} answered turns")
    persist = given_thread is not None or settings.keep_anonymous_threads
    thread = given_thread or uuid.uuid4().hex
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    try:
        forced = body.forced_call_schema() if body.model != "assistant" else None
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    slot = await shared.lines.slot_for(question if body.model == "assistant" else None)
    generation = Generation(shared.assistant, slot, settings.request_timeout_s)
    if body.model == "assistant":
        events = generation.turn(question, thread, escalation=body.escalation, max_tokens=requested,
                                 persist=persist, cost_cap_usd=body.cost_cap_usd, replace_last=body.regenerate,
                                 edit_turn=body.edit_turn, client=client, system_prompt=system_prompt,
                                 answer_with=body.answer_with, temperature=body.temperature)
    else:
        events = generation.direct(body.model, direct_messages(body.messages), max_tokens=requested or 512,
                                   temperature=body.temperature or 0.0, tools=body.tool_definitions(),
                                   json_schema=forced)
    if body.stream:
        try:  # an error before anything is shown (a context overflow) is still an HTTP status, as unstreamed
            visible = VISIBLE_EVENTS + (STAGE_EVENTS if body.stream_stages else ())
            head = await events_until(events, request, settings.request_timeout_s, visible)
        except BaseException:
            generation.release_if_unstarted()
            await events.aclose()
            raise
        if head is None:
            generation.release_if_unstarted()
            return Response(status_code=499)  # the client went away; nobody reads this
        chunks = sse(replayed(head, events), body.model, request_id, include_usage, metrics, persist,
                     settings.request_timeout_s, LiveText(hold_documents=not body.stream_drafts)
                     if body.model == "assistant" else None, stages=body.stream_stages)
        headers = {"Cache-Control": "no-cache"} | ({"X-Assistant-Thread-Id": thread} if persist else {})
        return StreamingResponse(chunks, media_type="text/event-stream", headers=headers,
                                 background=BackgroundTask(generation.release_if_unstarted))
    try:
        final = await final_event(events, request, settings.request_timeout_s)
    finally:
        generation.release_if_unstarted()
    if final is None:
        return Response(status_code=499)  # the client went away; nobody reads this
    if final["type"] == "completion":
        completion: Completion = final["completion"]
        reply = completion_body(request_id, body.model, completion.text, completion_usage(completion), None,
                                completion.finish_reason)
        if completion.tool_calls:
            reply["choices"][0]["message"] = {"role": "assistant", "content": completion.text or None,
                                              "tool_calls": [call.to_openai() for call in completion.tool_calls]}
        return JSONResponse(reply)
    answer: Answer = final["answer"]
    metrics.record_answer(answer)
    return JSONResponse(completion_body(request_id, body.model, answer.text, answer_usage(answer),
                                        answer_metadata(answer, persist), answer.finish_reason, answer.working),
                        headers=answer_headers(answer, persist))
