"""The local web endpoint: an OpenAI-compatible chat API and a one-file chat page, built by an app factory.

``POST /v1/chat/completions`` answers with the routed assistant (model ``assistant``) or one tier directly
(``small``, ``large``), streamed as server-sent events or not. The standard fields keep their meaning; the route,
escalation, sources, confidence and cost travel in ``X-Assistant-*`` headers and in one namespaced body key,
``x_assistant``. The thread id comes from the ``X-Thread-Id`` header or the body's ``thread_id``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.middleware.trustedhost import TrustedHostMiddleware

from assistant.api import Answer, Assistant, iterate_in_thread
from assistant.errors import ConfigError
from assistant.metrics import Metrics
from assistant.settings import ServerSettings
from models.base import Completion, TextDelta
from tools.words import extract_expression

STATIC = Path(__file__).parent / "static"
MODELS = ("assistant", "small", "large")


class ChatMessage(BaseModel):
    """One OpenAI chat message (text content only)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text, joining text parts of a multi-part content list."""
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The subset of the OpenAI chat-completions request this server honours (other fields are accepted)."""

    model_config = ConfigDict(extra="allow")

    model: str = "assistant"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    thread_id: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    escalation: Literal["auto", "never", "always"] | None = None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key_bytes(settings: ServerSettings) -> bytes | None:
    """The API key to require, or None: an empty or whitespace-only key counts as no key (S12)."""
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        return None
    return settings.api_key.get_secret_value().encode()


def check_bind(settings: ServerSettings) -> None:
    """Refuse to listen beyond loopback without an API key (an empty or blank key is no key)."""
    if not is_loopback(settings.host) and api_key_bytes(settings) is None:
        raise ConfigError(
            f"refusing to listen on {settings.host} without an API key: anyone who can reach it could use it",
            "set server.api_key (ASSISTANT_SERVER__API_KEY=...) or keep the default host 127.0.0.1")


def _usage(answer: Answer) -> dict[str, int]:
    """The OpenAI usage record of a turn: every model call's tokens."""
    total = answer.cost["total"]
    prompt, completion = int(total["prompt_tokens"]), int(total["completion_tokens"])
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion_usage(completion: Completion) -> dict[str, int]:
    """The OpenAI usage record of one model call."""
    return {"prompt_tokens": completion.usage.prompt_tokens, "completion_tokens": completion.usage.completion_tokens,
            "total_tokens": completion.usage.total_tokens}


def _usage_chunk(request_id: str, model: str, usage: dict[str, int]) -> bytes:
    """The last chunk before ``[DONE]`` when ``stream_options.include_usage`` is set: no choices, full usage."""
    chunk = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
             "choices": [], "usage": usage}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _metadata(answer: Answer) -> dict[str, Any]:
    return {
        "route": answer.route, "route_stage": answer.route_stage, "thread_id": answer.thread_id,
        "confidence": answer.confidence, "escalated": answer.escalated,
        "escalation_reason": answer.escalation_reason,
        "sources": [{key: source.get(key) for key in ("chunk_id", "doc_id", "title", "score", "text", "used")}
                    for source in answer.sources],
        "cost": answer.cost, "wall_seconds": answer.wall_seconds,
    }


def _headers(answer: Answer) -> dict[str, str]:
    cited = ",".join(source["chunk_id"] for source in answer.cited)
    return {
        "X-Assistant-Route": answer.route, "X-Assistant-Escalated": str(answer.escalated).lower(),
        "X-Assistant-Thread-Id": answer.thread_id, "X-Assistant-Confidence": f"{answer.confidence:.4f}",
        "X-Assistant-Cost-USD": f"{answer.cost['total']['cost_usd']:.8f}",
        "X-Assistant-Sources": cited.encode("ascii", "replace").decode(),
    }


def _completion_body(request_id: str, model: str, text: str, usage: dict[str, int],
                     metadata: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": request_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }
    if metadata is not None:
        body["x_assistant"] = metadata
    return body


def _chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None = None,
           extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if extra:
        body.update(extra)
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


class _BodyTooLargeError(Exception):
    pass


class GuardMiddleware:
    """Pure ASGI: body-size cap (Content-Length and streamed bytes), API key on /v1/*, request metrics."""

    def __init__(self, app: Any, *, max_body_bytes: int, key: bytes | None, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.key = key
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = str(scope["path"])
        status = 500
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length")

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.metrics.observe("assistant_request_seconds", "Time to the response's first byte.",
                                     time.perf_counter() - started, path=path)
            await send(message)

        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                raise _BodyTooLargeError
            if self.key is not None and path.startswith("/v1/") and scope["method"] != "OPTIONS":
                supplied = headers.get("authorization", "").removeprefix("Bearer ").encode()
                if not hmac.compare_digest(supplied, self.key):
                    error = {"error": {"message": "invalid or missing API key", "type": "authentication_error"}}
                    await JSONResponse(error, status_code=401)(scope, receive, recording_send)
                    return
            await self.app(scope, await self._buffered(receive), recording_send)
        except _BodyTooLargeError:
            error = {"error": {"message": f"request body over {self.max_body_bytes} bytes",
                               "type": "invalid_request_error"}}
            await JSONResponse(error, status_code=413)(scope, receive, recording_send)
        finally:
            self.metrics.inc("assistant_requests_total", "HTTP requests by path and status.", path=path,
                             status=str(status))

    async def _buffered(self, receive: Any) -> Any:
        """Read the whole body first (at most max_body_bytes, however it is sent), then replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks = []
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                raise _BodyTooLargeError
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        return replay


class QueueFullError(Exception):
    """No room in the waiting line; ``retry_after`` is a hint in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class Admission:
    """A bounded FIFO in front of the models: ``concurrency`` requests run, ``queue_size`` wait, the rest get 429."""

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.waiting = 0
        self._semaphore = asyncio.Semaphore(concurrency)
        self._durations: deque[float] = deque(maxlen=20)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free, from recent request durations."""
        average = sum(self._durations) / len(self._durations) if self._durations else 5.0
        return max(1, math.ceil(average * (self.waiting + 1) / self.concurrency))

    async def acquire(self) -> Slot:
        """Wait for a slot (FIFO); raises QueueFullError when the line is full."""
        if self.waiting >= self.queue_size and self._semaphore.locked():
            raise QueueFullError(self.retry_after())
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        return Slot(self)

    def _free(self, seconds: float) -> None:
        self._durations.append(seconds)
        self._semaphore.release()


class Slot:
    """A held admission slot; ``release`` is idempotent, so every exit path may call it."""

    def __init__(self, admission: Admission | None) -> None:
        self._admission = admission
        self._started = time.perf_counter()
        self._released = False

    @classmethod
    def unused(cls) -> Slot:
        """A slot for requests that need no model (plain arithmetic): releasing it does nothing."""
        return cls(None)

    def release(self) -> None:
        """Give the slot back (once)."""
        if not self._released and self._admission is not None:
            self._released = True
            self._admission._free(time.perf_counter() - self._started)


def _record(metrics: Metrics, answer: Answer) -> None:
    metrics.inc("assistant_routes_total", "Answered turns by route.", route=answer.route)
    if answer.escalated:
        metrics.inc("assistant_escalations_total", "Turns answered (also) by the large model.")
    for item in answer.usage:
        metrics.inc("assistant_tokens_total", "Tokens processed, by model tier.",
                    item.get("prompt_tokens", 0) + item.get("completion_tokens", 0), tier=str(item.get("tier")))


def create_app(assistant: Assistant, settings: ServerSettings) -> FastAPI:
    """The FastAPI application serving ``assistant`` under ``settings`` (bind checks happen in ``serve``)."""
    app = FastAPI(title="small-first-assistant", version="0.1.0")
    metrics = Metrics()
    admission = Admission(settings.concurrency, settings.queue_size)
    key = api_key_bytes(settings)

    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, key=key, metrics=metrics)

    # Added after the guard, so they run before it: CORS answers preflights, the Host check runs first of all.
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Thread-Id"],
                           expose_headers=["X-Assistant-Route", "X-Assistant-Escalated", "X-Assistant-Thread-Id"])
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.set("assistant_queue_depth", "Chat requests waiting for a slot.", admission.waiting)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(QueueFullError)
    async def busy(request: Request, error: QueueFullError) -> Response:
        return JSONResponse({"error": {"message": str(error), "type": "rate_limit_error"}}, status_code=429,
                            headers={"Retry-After": str(error.retry_after)})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(MODELS)}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        created = int(time.time())
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created,
                                            "owned_by": "small-first-assistant"} for name in MODELS]}

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        if body.model not in MODELS:
            raise HTTPException(404, f"unknown model {body.model!r}; choose one of {', '.join(MODELS)}")
        requested = body.max_completion_tokens or body.max_tokens
        if requested is not None and requested > settings.max_tokens_cap:
            raise HTTPException(400, f"max_tokens {requested} is over the server's cap {settings.max_tokens_cap}")
        question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "").strip()
        if not question:
            raise HTTPException(400, "the conversation has no user message with text")
        thread = request.headers.get("x-thread-id") or body.thread_id or uuid.uuid4().hex
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        # Plain arithmetic never touches a model, so it never waits behind one in the queue.
        needs_model = body.model != "assistant" or extract_expression(question) is None
        slot = await admission.acquire() if needs_model else Slot.unused()
        if body.model != "assistant":
            return await _direct(assistant, body, requested, request_id, include_usage, slot)
        if not body.stream:
            try:
                if needs_model:
                    answer = await _answer_within(assistant, question, thread, body, settings.request_timeout_s)
                else:  # the calculator answers in milliseconds: no streaming machinery, no time limit needed
                    answer = await asyncio.to_thread(assistant.ask, question, thread, escalation=body.escalation)
            finally:
                slot.release()
            _record(metrics, answer)
            return JSONResponse(_completion_body(request_id, body.model, answer.text, _usage(answer),
                                                 _metadata(answer)), headers=_headers(answer))

        async def released() -> AsyncIterator[bytes]:
            try:
                async for chunk in _stream_answer(assistant, question, thread, body, request_id, include_usage,
                                                  metrics, settings.request_timeout_s):
                    yield chunk
            finally:
                slot.release()

        return StreamingResponse(released(), media_type="text/event-stream", background=BackgroundTask(slot.release),
                                 headers={"X-Assistant-Thread-Id": thread, "Cache-Control": "no-cache"})

    return app


async def _answer_within(assistant: Assistant, question: str, thread: str, body: ChatRequest,
                         timeout_s: float) -> Answer:
    """The turn's Answer, streamed internally so that a turn past the time limit is stopped, not abandoned."""
    try:
        async with asyncio.timeout(timeout_s):
            async for event in assistant.astream(question, thread, escalation=body.escalation):
                if event["type"] == "answer":
                    answer: Answer = event["answer"]
                    return answer
    except TimeoutError:
        raise HTTPException(504, f"the answer took longer than the {timeout_s:g} s limit and was stopped") from None
    raise HTTPException(500, "the turn ended without an answer")


async def _stream_answer(assistant: Assistant, question: str, thread: str, body: ChatRequest, request_id: str,
                         include_usage: bool, metrics: Metrics, timeout_s: float) -> AsyncIterator[bytes]:
    """SSE chunks: role, tokens (a visible note when the turn escalates), the final chunk, usage, [DONE]."""
    yield _chunk(request_id, body.model, {"role": "assistant", "content": ""})
    streamed = False
    answer_so_far = ""  # what the model answering now has streamed (a FACT answer gets its citation at the end)
    deadline = time.monotonic() + timeout_s
    try:
        async for event in assistant.astream(question, thread, escalation=body.escalation):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the answer took longer than the {timeout_s:g} s limit and was stopped")
            if event["type"] == "token":
                streamed = True
                answer_so_far += event["text"]
                yield _chunk(request_id, body.model, {"content": event["text"]})
            elif event["type"] == "escalate":
                answer_so_far = ""
                note = "\n\n[escalated to the large model]\n\n" if streamed else ""
                yield _chunk(request_id, body.model, {"content": note} if note else {},
                             extra={"x_assistant": {"event": "escalate", "reason": event.get("reason", "")}})
            elif event["type"] == "answer":
                answer: Answer = event["answer"]
                _record(metrics, answer)
                if not streamed or answer.route == "MATH":
                    yield _chunk(request_id, body.model, {"content": answer.text})
                elif answer.text.startswith(answer_so_far.strip()) and len(answer.text) > len(answer_so_far.strip()):
                    yield _chunk(request_id, body.model, {"content": answer.text[len(answer_so_far.strip()):]})
                yield _chunk(request_id, body.model, {}, "stop", extra={"x_assistant": _metadata(answer)})
                if include_usage:
                    yield _usage_chunk(request_id, body.model, _usage(answer))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # the stream has begun: report the error in-band, then end it cleanly
        payload = {"error": {"message": f"{type(error).__name__}: {error}", "type": "server_error"}}
        yield f"data: {json.dumps(payload)}\n\n".encode()
    yield b"data: [DONE]\n\n"


async def _direct(assistant: Assistant, body: ChatRequest, max_tokens: int | None, request_id: str,
                  include_usage: bool, slot: Slot) -> Response:
    """One tier answering the conversation as given (no routing, no tools); releases the admission slot."""
    model = assistant.models[body.model]
    messages: list[Any] = [{"role": m.role if m.role in ("system", "user", "assistant") else "user",
                            "content": m.text()} for m in body.messages]
    options: dict[str, Any] = {"max_tokens": max_tokens or 512, "temperature": body.temperature or 0.0}
    if not body.stream:
        try:
            completion: Completion = await asyncio.to_thread(model.chat, messages, **options)
        finally:
            slot.release()
        return JSONResponse(_completion_body(request_id, body.model, completion.text, _completion_usage(completion),
                                             None))

    async def chunks() -> AsyncIterator[bytes]:
        yield _chunk(request_id, body.model, {"role": "assistant", "content": ""})
        final: Completion | None = None
        try:
            async for item in iterate_in_thread(lambda: model.stream(messages, **options)):
                if isinstance(item, TextDelta):
                    yield _chunk(request_id, body.model, {"content": item.text})
                else:
                    final = item
        finally:
            slot.release()
        yield _chunk(request_id, body.model, {}, final.finish_reason if final else "stop")
        if include_usage and final is not None:
            yield _usage_chunk(request_id, body.model, _completion_usage(final))
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream", background=BackgroundTask(slot.release))
