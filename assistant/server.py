"""The local web endpoint: an OpenAI-compatible chat API and a one-file chat page, built by an app factory.

``POST /v1/chat/completions`` answers with the routed assistant (model ``assistant``) or one tier directly
(``small``, ``large``), streamed as server-sent events or not. The standard fields keep their meaning; the route,
escalation, sources, confidence and cost travel in ``X-Assistant-*`` headers and in one namespaced body key,
``x_assistant``. The thread id comes from the ``X-Thread-Id`` header or the body's ``thread_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match

from assistant.admission import Generation, Lines, QueueFullError
from assistant.core.assistant import Answer, Assistant
from assistant.core.errors import ConfigError
from assistant.core.settings import McpSettings, ServerSettings
from assistant.core.text import normalize_question
from assistant.core.threads import THREAD_ID_PATTERN
from assistant.documents import (
    STAGING_FOLDER,
    UPLOAD_PREFIX,
    IndexingJobs,
    UploadQueueFullError,
    UploadRejectedError,
    check_upload,
    list_documents,
    view_document,
)
from assistant.live import REPLACED_NOTE, LiveText
from assistant.mcp_server import MCP_PATH, build_mcp
from assistant.metrics import CONTENT_TYPE, UNMATCHED, Metrics
from models.base import Completion, Message, Tool
from models.errors import ContextOverflowError
from retrieval.reader import BoundedReader

STATIC = Path(__file__).parent / "static"
UPLOAD_PATH = "/v1/documents"
# The page runs only its own scripts and styles, loads nothing from elsewhere, and cannot be framed: model text
# and retrieved passages (rendered as sanitised markdown) can never run script or fetch remote content.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".txt": "text/plain"}
MODELS = ("assistant", "small", "large")
_THREAD_ID = re.compile(THREAD_ID_PATTERN)
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 408: "timeout_error",
                413: "invalid_request_error", 415: "invalid_request_error", 429: "rate_limit_error",
                504: "timeout_error"}


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An OpenAI-shaped error body: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


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
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    thread_id: str | None = Field(None, pattern=THREAD_ID_PATTERN)
    escalation: Literal["auto", "never", "always"] | None = None
    cost_cap_usd: float | None = Field(None, ge=0, allow_inf_nan=False, description=(
        "Most this turn may spend, in dollars: the large model is not called when it would pass it."))
    stream_drafts: bool = Field(False, description=(
        "Stream drafts as they are written, with an x_assistant replace event when one is discarded (the page does); "
        "otherwise documents answers are streamed once final, so the content deltas add up to the stored answer."))
    regenerate: bool = Field(False, description=(
        "Answer again in place of the thread's last turn (model assistant, with a thread id)."))
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


class ThreadChange(BaseModel):
    """A change to a thread: its title."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, pattern=r"\S")


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


def header_value(text: str) -> str:
    """``text`` safe for an HTTP header: percent-encoded outside printable ASCII (a CR/LF or NUL from a document
    id can neither end the header nor inject another; the comma between ids stays)."""
    return quote(text, safe=" !#$&'()*+,/:;=?@[]^_`{|}~-.")


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


def _metadata(answer: Answer, persisted: bool) -> dict[str, Any]:
    return answer.details() | {"thread_id": answer.thread_id if persisted else None}


def _headers(answer: Answer, persisted: bool) -> dict[str, str]:
    cited = ",".join(source["chunk_id"] for source in answer.cited)
    headers = {
        "X-Assistant-Route": answer.route, "X-Assistant-Escalated": str(answer.escalated).lower(),
        "X-Assistant-Confidence": f"{answer.confidence:.4f}",
        "X-Assistant-Cost-USD": f"{answer.cost['total']['cost_usd']:.8f}",
        "X-Assistant-Sources": header_value(cited),
    }
    if persisted:
        headers["X-Assistant-Thread-Id"] = answer.thread_id
    return headers


def _completion_body(request_id: str, model: str, text: str, usage: dict[str, int],
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


def _chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None = None,
           extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if extra:
        body.update(extra)
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


class _BodyTooLargeError(Exception):
    pass


class _BodyTooSlowError(Exception):
    pass


def _bearer_token(header: str) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme is case-insensitive); b"" otherwise."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip().encode() if scheme.lower() == "bearer" else b""


STATE_CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
KEYED_PAGES = ("/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def origin_allowed(origin: str, host: str, cors_origins: list[str]) -> bool:
    """True when a request's ``Origin`` is the server's own (same scheme-less host and port as ``Host``, which the
    Host allowlist has already checked) or one the settings allow by CORS; "null" and anything else are foreign."""
    if origin in cors_origins:
        return True
    parsed = urlsplit(origin)
    return parsed.scheme in ("http", "https") and bool(host) and parsed.netloc.lower() == host.lower()


class GuardMiddleware:
    """Pure ASGI: body-size cap and read deadline, API key on /v1/*, /metrics and the API docs, a foreign Origin
    refused on state-changing requests, request metrics by route."""

    def __init__(self, app: Any, *, max_body_bytes: int, body_timeout_s: float, key: bytes | None,
                 metrics: Metrics, router: Any, max_upload_bytes: int | None = None,
                 upload_timeout_s: float | None = None, cors_origins: list[str] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.upload_timeout_s = upload_timeout_s or body_timeout_s
        self.key = key
        self.metrics = metrics
        self.router = router
        self.cors_origins = cors_origins or []

    def _template(self, scope: dict[str, Any]) -> str:
        """The route template serving ``scope`` (never the raw path, so labels stay few)."""
        route = scope.get("route")
        if route is None:
            route = next((candidate for candidate in self.router.routes
                          if candidate.matches(scope)[0] != Match.NONE), None)
        return str(getattr(route, "path", UNMATCHED))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = str(scope["path"])
        status = 500
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length")
        upload = path == UPLOAD_PATH and scope["method"] == "POST"
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        timeout = self.upload_timeout_s if upload else self.body_timeout_s

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.metrics.latency.labels(path=self._template(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            if length is not None and (not length.isdigit() or int(length) > limit):
                raise _BodyTooLargeError
            origin = headers.get("origin")
            if (origin is not None and scope["method"] in STATE_CHANGING_METHODS and path != MCP_PATH
                    and not origin_allowed(origin, headers.get("host", ""), self.cors_origins)):
                # Cross-site request forgery: a browser on another site may send this request, key or no key.
                await error_response(403, f"requests from the origin {origin[:100]!r} may not change anything here",
                                     code="foreign_origin")(scope, receive, recording_send)
                return
            protected = path.startswith(("/v1/", MCP_PATH)) or path in KEYED_PAGES
            if (self.key is not None and protected and scope["method"] != "OPTIONS"
                    and not hmac.compare_digest(_bearer_token(headers.get("authorization", "")), self.key)):
                await error_response(401, "invalid or missing API key: send Authorization: Bearer <key>",
                                     code="invalid_api_key")(scope, receive, recording_send)
                return
            await self.app(scope, await self._buffered(receive, limit, timeout), recording_send)
        except _BodyTooLargeError:
            await error_response(413, f"request body over {limit} bytes")(scope, receive, recording_send)
        except _BodyTooSlowError:
            await error_response(408, f"the request body did not arrive within {timeout:g} s")(
                scope, receive, recording_send)
        finally:
            self.metrics.requests.labels(path=self._template(scope), status=str(status)).inc()

    async def _buffered(self, receive: Any, limit: int, timeout_s: float) -> Any:
        """Read the whole body first (at most ``limit`` bytes, within ``timeout_s``), then replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        chunks = []
                        break
                    size += len(message.get("body", b""))
                    if size > limit:
                        raise _BodyTooLargeError
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise _BodyTooSlowError from None
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        return replay


def _timeout_message(seconds: float) -> str:
    return f"the answer took longer than the {seconds:g} s limit and was stopped"


def create_app(assistant: Assistant, settings: ServerSettings, mcp_settings: McpSettings | None = None) -> FastAPI:
    """The FastAPI application serving ``assistant`` under ``settings`` (bind checks happen in ``serve``).

    Unless ``mcp_settings.mount`` is off, the MCP server answers at ``/mcp`` (streamable HTTP) behind the same key,
    Host and Origin rules, sharing the chat endpoint's queues.
    """
    mcp_settings = mcp_settings or McpSettings()
    lines = Lines(settings.concurrency, settings.queue_size, settings.calculator_concurrency,
                  settings.calculator_queue_size)
    retriever = assistant.retriever
    jobs = None
    if retriever is not None:
        reader = BoundedReader(assistant.settings.retrieval.parse_timeout_s,
                               assistant.settings.retrieval.parse_memory_mb)
        jobs = IndexingJobs(retriever, retriever.directory / STAGING_FOLDER, reader,
                            max_queued=settings.max_queued_uploads)
    mcp = build_mcp(assistant, settings, mcp_settings, lines, jobs.writes if jobs is not None else None) \
        if mcp_settings.mount else None
    static_files = {path.relative_to(STATIC).as_posix(): path for path in STATIC.rglob("*")
                    if path.is_file() and path.suffix in STATIC_TYPES}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if mcp is None:
                yield
            else:
                async with mcp.session_manager.run():
                    yield
        finally:
            if jobs is not None:
                await asyncio.to_thread(jobs.close)

    app = FastAPI(title="small-first-assistant", version="0.1.0", lifespan=lifespan)
    if mcp is not None:
        app.router.routes.extend(mcp.streamable_http_app().routes)
    metrics = Metrics()
    key = api_key_bytes(settings)

    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes,
                       body_timeout_s=settings.body_timeout_s, key=key, metrics=metrics, router=app.router,
                       max_upload_bytes=settings.max_upload_bytes, upload_timeout_s=settings.upload_timeout_s,
                       cors_origins=settings.cors_origins)

    # Added after the guard, so they run before it: CORS answers preflights, the Host check runs first of all.
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Thread-Id"],
                           expose_headers=["X-Assistant-Route", "X-Assistant-Escalated", "X-Assistant-Thread-Id"])
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [f"{'.'.join(str(part) for part in item.get('loc', ())[1:]) or 'body'}: {item.get('msg')}"
                    for item in error.errors()]
        first = error.errors()[0].get("loc", ()) if error.errors() else ()
        return error_response(400, "invalid request: " + "; ".join(problems)[:2000],
                              param=".".join(str(part) for part in first[1:]) or None)

    @app.exception_handler(QueueFullError)
    async def busy(request: Request, error: QueueFullError) -> Response:
        return error_response(429, str(error), headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(ContextOverflowError)
    async def too_long(request: Request, error: ContextOverflowError) -> Response:
        return error_response(400, error.message, code="context_length_exceeded", param="messages")

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.queue_depth.labels(queue="models").set(lines.models.waiting)
        metrics.queue_depth.labels(queue="calculator").set(lines.calculator.waiting)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(MODELS), "loaded": assistant.loaded_tiers()}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        created = int(time.time())
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created,
                                            "owned_by": "small-first-assistant"} for name in MODELS]}

    @app.exception_handler(UploadQueueFullError)
    async def uploads_busy(request: Request, error: UploadQueueFullError) -> Response:
        return error_response(429, error.message, code="indexing_queue_full",
                              headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(UploadRejectedError)
    async def rejected(request: Request, error: UploadRejectedError) -> Response:
        code = "file_too_large" if error.status == 413 else "unsupported_file"
        return error_response(error.status, error.message, code=code, param="file")

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/static/{name:path}")
    def static(name: str) -> FileResponse:
        path = static_files.get(name)  # only the files shipped in assistant/static, never a path built from input
        if path is None:
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers=PAGE_HEADERS)

    @app.get("/v1/threads")
    def list_threads(limit: int = Query(100, ge=1, le=1000),
                     offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict[str, Any]:
        total, threads = assistant.threads.threads(limit=limit, offset=offset)
        return {"object": "list", "total": total, "data": [thread.to_dict() for thread in threads]}

    @app.get("/v1/threads/{thread_id}")
    def get_thread(thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
        record = assistant.thread(thread_id)
        if record is None:
            raise HTTPException(404, f"no thread {thread_id!r}")
        return record.to_dict()

    @app.patch("/v1/threads/{thread_id}")
    def rename_thread(change: ThreadChange, thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
        title = " ".join(normalize_question(change.title).split())  # no control, format or bidi characters
        if not title:
            raise HTTPException(400, "the title has no visible characters")
        if not assistant.threads.rename(thread_id, title):
            raise HTTPException(404, f"no thread {thread_id!r}")
        record = assistant.threads.thread(thread_id)
        return record.summary.to_dict() if record is not None else {}

    @app.delete("/v1/threads/{thread_id}")
    def delete_thread(thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
        if assistant.thread(thread_id) is None:
            raise HTTPException(404, f"no thread {thread_id!r}")
        assistant.forget(thread_id)
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    def indexing() -> IndexingJobs:
        if jobs is None:
            raise HTTPException(409, "this assistant has no document index")
        return jobs

    @app.get(UPLOAD_PATH)
    def get_documents(prefix: str = Query("", max_length=500), offset: int = Query(0, ge=0, le=1_000_000_000),
                      limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        total, documents = list_documents(assistant.retriever, prefix=prefix, offset=offset, limit=limit)
        return {"object": "list", "total": total, "data": documents}

    @app.post(UPLOAD_PATH, status_code=202)
    async def upload_documents(request: Request) -> JSONResponse:
        queue = indexing()
        form = await request.form(max_files=20, max_fields=20)
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise HTTPException(400, "send the files as multipart/form-data fields named file")
        checked = []
        for upload in files:  # every file is checked before any is queued: one bad file refuses the request
            data = await upload.read()
            checked.append((check_upload(upload.filename or "", data, settings.max_upload_bytes), data))
        queued = await asyncio.to_thread(queue.submit_all, checked)  # writes the staged files
        return JSONResponse({"object": "list", "data": [job.to_dict() for job in queued]}, status_code=202)

    @app.get(UPLOAD_PATH + "/jobs")
    def list_jobs() -> dict[str, Any]:
        return {"object": "list", "data": [job.to_dict() for job in indexing().recent()]}

    @app.get(UPLOAD_PATH + "/jobs/{job_id}")
    def get_job(job_id: str = PathParam(pattern=r"^[0-9a-f]{32}$")) -> dict[str, Any]:
        job = indexing().get(job_id)
        if job is None:
            raise HTTPException(404, f"no indexing job {job_id!r}")
        return job.to_dict()

    @app.post(UPLOAD_PATH + "/jobs/{job_id}/cancel")
    def cancel_job(job_id: str = PathParam(pattern=r"^[0-9a-f]{32}$")) -> dict[str, Any]:
        job = indexing().cancel(job_id)
        if job is None:
            raise HTTPException(404, f"no indexing job {job_id!r}")
        if job.state in ("done", "failed"):
            raise HTTPException(409, f"indexing job {job_id!r} has already finished ({job.state})")
        return job.to_dict()

    @app.get(UPLOAD_PATH + "/{doc_id:path}")
    def get_document(doc_id: str) -> dict[str, Any]:
        view = view_document(assistant.retriever, doc_id)
        if view is None:
            raise HTTPException(404, f"no document {doc_id!r}")
        return view.to_dict()

    @app.delete(UPLOAD_PATH + "/{doc_id:path}")
    async def delete_document(doc_id: str) -> dict[str, Any]:
        queue = indexing()
        if doc_id not in queue.retriever.follow().documents():
            raise HTTPException(404, f"no document {doc_id!r}")
        if not doc_id.startswith(UPLOAD_PREFIX) and not settings.remove_any_document:
            raise HTTPException(403, f"{doc_id!r} was not uploaded through this API; remove it with `assistant index "
                                     "remove` (or set server.remove_any_document)")
        # The removal waits for the index's writer in its own thread, never in one that answers questions.
        chunks = await asyncio.wrap_future(queue.writes.submit(lambda: queue.retriever.remove(doc_id)))
        if not chunks:
            raise HTTPException(404, f"no document {doc_id!r}")
        return {"id": doc_id, "object": "document.deleted", "deleted": True, "chunks": chunks}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        if body.model not in MODELS:
            raise HTTPException(404, f"unknown model {body.model!r}; choose one of {', '.join(MODELS)}")
        requested = body.max_completion_tokens or body.max_tokens
        if requested is not None and requested > settings.max_tokens_cap:
            raise HTTPException(400, f"max_tokens {requested} is over the server's cap {settings.max_tokens_cap}")
        question = normalize_question(next((m.text() for m in reversed(body.messages) if m.role == "user"), ""))
        if not question.strip():
            raise HTTPException(400, "the conversation has no user message with text")
        header_thread = request.headers.get("x-thread-id")
        if header_thread is not None and not _THREAD_ID.match(header_thread):
            raise HTTPException(400, "X-Thread-Id must be 1-128 letters, digits or . _ : -")
        given_thread = header_thread or body.thread_id
        if body.regenerate and (given_thread is None or body.model != "assistant"):
            raise HTTPException(400, "regenerate needs model assistant and a thread id (X-Thread-Id or thread_id)")
        persist = given_thread is not None or settings.keep_anonymous_threads
        thread = given_thread or uuid.uuid4().hex
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        try:
            forced = body.forced_call_schema() if body.model != "assistant" else None
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        slot = await lines.slot_for(question if body.model == "assistant" else None)
        generation = Generation(assistant, slot, settings.request_timeout_s)
        if body.model == "assistant":
            events = generation.turn(question, thread, escalation=body.escalation, max_tokens=requested,
                                     persist=persist, cost_cap_usd=body.cost_cap_usd, replace_last=body.regenerate)
        else:
            events = generation.direct(body.model, direct_messages(body.messages), max_tokens=requested or 512,
                                       temperature=body.temperature or 0.0, tools=body.tool_definitions(),
                                       json_schema=forced)
        if body.stream:
            try:  # an error before anything is shown (a context overflow) is still an HTTP status, as unstreamed
                head = await _events_until(events, request, settings.request_timeout_s, VISIBLE_EVENTS)
            except BaseException:
                generation.release_if_unstarted()
                await events.aclose()
                raise
            if head is None:
                generation.release_if_unstarted()
                return Response(status_code=499)  # the client went away; nobody reads this
            chunks = _sse(_replayed(head, events), body.model, request_id, include_usage, metrics, persist,
                          settings.request_timeout_s, LiveText(hold_documents=not body.stream_drafts)
                          if body.model == "assistant" else None)
            headers = {"Cache-Control": "no-cache"} | ({"X-Assistant-Thread-Id": thread} if persist else {})
            return StreamingResponse(chunks, media_type="text/event-stream", headers=headers,
                                     background=BackgroundTask(generation.release_if_unstarted))
        try:
            final = await _final_event(events, request, settings.request_timeout_s)
        finally:
            generation.release_if_unstarted()
        if final is None:
            return Response(status_code=499)  # the client went away; nobody reads this
        if final["type"] == "completion":
            completion: Completion = final["completion"]
            reply = _completion_body(request_id, body.model, completion.text, _completion_usage(completion), None,
                                     completion.finish_reason)
            if completion.tool_calls:
                reply["choices"][0]["message"] = {"role": "assistant", "content": completion.text or None,
                                                  "tool_calls": [call.to_openai() for call in completion.tool_calls]}
            return JSONResponse(reply)
        answer: Answer = final["answer"]
        metrics.record_answer(answer)
        return JSONResponse(_completion_body(request_id, body.model, answer.text, _usage(answer),
                                             _metadata(answer, persist), answer.finish_reason, answer.working),
                            headers=_headers(answer, persist))

    return app


VISIBLE_EVENTS = ("token", "working", "reset", "escalate", "answer", "completion")
"""Events that put something on a stream: before the first of them an error can still be an HTTP status."""


async def _events_until(events: AsyncGenerator[dict[str, Any], None], request: Request, timeout_s: float,
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
        raise HTTPException(504, _timeout_message(timeout_s)) from None
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _final_event(events: AsyncGenerator[dict[str, Any], None], request: Request,
                       timeout_s: float) -> dict[str, Any] | None:
    """The last ``answer``/``completion`` event; None when the client disconnected first (the turn is cancelled)."""
    collected = await _events_until(events, request, timeout_s, ("answer", "completion"))
    if collected is None:
        return None
    if not collected or collected[-1]["type"] not in ("answer", "completion"):
        raise RuntimeError("the turn ended without an answer")
    return collected[-1]


async def _replayed(head: list[dict[str, Any]],
                    events: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
    """``head`` (events already read), then the rest of ``events``; closing this closes ``events``."""
    try:
        for event in head:
            yield event
        async for event in events:
            yield event
    finally:
        await events.aclose()


async def _sse(events: AsyncGenerator[dict[str, Any], None], model: str, request_id: str, include_usage: bool,
               metrics: Metrics, persisted: bool, timeout_s: float, live: LiveText | None) -> AsyncIterator[bytes]:
    """SSE chunks: role, the answer's text as it is written, the final chunk, usage, [DONE].

    A turn's text follows ``live`` (:class:`LiveText`): a client that asked for ``stream_drafts`` sees drafts as
    they are written and a chunk whose ``x_assistant`` says ``{"event": "replace", "text": ...}`` when one is
    discarded; any other client is shown a documents answer only when it is final, so the ``content`` deltas add up
    to the stored answer (a chat draft discarded by an escalation is the one exception, and the stream says so in
    its text). One path for every model name; an error after the stream began is reported in-band, then it ends.
    """
    yield _chunk(request_id, model, {"role": "assistant", "content": ""})
    streamed = False
    try:
        async for event in events:
            for edit in live.feed(event) if live is not None else []:
                if edit.kind == "append":
                    yield _chunk(request_id, model, {"content": edit.text})
                else:
                    note = f"\n\n[{REPLACED_NOTE}]\n\n{edit.text}" if live and live.hold_documents else ""
                    yield _chunk(request_id, model, {"content": note} if note else {},
                                 extra={"x_assistant": {"event": "replace", "text": edit.text}})
                streamed = True
            if event["type"] == "working":
                yield _chunk(request_id, model, {"reasoning_content": event["text"]})
            elif event["type"] == "escalate":
                yield _chunk(request_id, model, {},
                             extra={"x_assistant": {"event": "escalate", "reason": event.get("reason", "")}})
            elif event["type"] == "token" and live is None:  # a tier answering directly
                streamed = True
                yield _chunk(request_id, model, {"content": event["text"]})
            elif event["type"] == "completion":
                completion: Completion = event["completion"]
                if not streamed and completion.text:  # a reply with tools arrives whole, at the end
                    yield _chunk(request_id, model, {"content": completion.text})
                if completion.tool_calls:
                    calls = [{"index": index, **call.to_openai()} for index, call in enumerate(completion.tool_calls)]
                    yield _chunk(request_id, model, {"tool_calls": calls})
                yield _chunk(request_id, model, {}, completion.finish_reason)
                if include_usage:
                    yield _usage_chunk(request_id, model, _completion_usage(completion))
            elif event["type"] == "answer":
                answer: Answer = event["answer"]
                metrics.record_answer(answer)
                yield _chunk(request_id, model, {}, answer.finish_reason,
                             extra={"x_assistant": _metadata(answer, persisted)})
                if include_usage:
                    yield _usage_chunk(request_id, model, _usage(answer))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # the stream has begun: report the error in-band, then end it cleanly
        message = _timeout_message(timeout_s) if isinstance(error, TimeoutError) else f"{type(error).__name__}: {error}"
        kind = "timeout_error" if isinstance(error, TimeoutError) else "server_error"
        code = "context_length_exceeded" if isinstance(error, ContextOverflowError) else None
        payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        yield f"data: {json.dumps(payload)}\n\n".encode()
    finally:
        await events.aclose()
    yield b"data: [DONE]\n\n"
