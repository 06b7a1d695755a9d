"""The local web endpoint's app factory: the OpenAI-compatible chat API, threads, documents, the page, operations
and the MCP server, each a router of its own over one set of shared services.

``POST /v1/chat/completions`` answers with the routed assistant (model ``assistant``) or one tier directly
(``small``, ``large``), streamed as server-sent events or not. The standard fields keep their meaning; the route,
escalation, sources, confidence and cost travel in ``X-Assistant-*`` headers and in one namespaced body key,
``x_assistant``. The thread id comes from the ``X-Thread-Id`` header or the body's ``thread_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from assistant.admission import Lines
from assistant.core.assistant import Assistant
from assistant.core.settings import McpSettings, ServerSettings
from assistant.core.sql import PostgresDatabase
from assistant.indexing import STAGING_FOLDER, IndexingJobs
from assistant.jobs import PostgresJobBook
from assistant.mcp_server import build_mcp
from assistant.metrics import Metrics
from assistant.server import chat, documents, operations, page, threads
from assistant.server.errors import add_error_handlers
from assistant.server.guard import GuardMiddleware, api_key_bytes
from assistant.server.services import Services
from retrieval.reader import BoundedReader


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
        # replicas on one PostgreSQL database take upload jobs from one table (and share the index's directory)
        database = assistant.storage.database
        staging = retriever.directory / STAGING_FOLDER
        book = PostgresJobBook(database, str(staging.resolve())) if isinstance(database, PostgresDatabase) else None
        jobs = IndexingJobs(retriever, staging, reader,
                            max_queued=settings.max_queued_uploads, book=book)
    mcp = build_mcp(assistant, settings, mcp_settings, lines, jobs.writes if jobs is not None else None) \
        if mcp_settings.mount else None

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
    metrics = Metrics()
    app.state.services = Services(assistant, settings, lines, jobs, metrics)
    if mcp is not None:
        app.router.routes.extend(mcp.streamable_http_app().routes)
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes,
                       body_timeout_s=settings.body_timeout_s, key=api_key_bytes(settings), metrics=metrics,
                       router=app.router, max_upload_bytes=settings.max_upload_bytes,
                       upload_timeout_s=settings.upload_timeout_s, cors_origins=settings.cors_origins)
    # Added after the guard, so they run before it: CORS answers preflights, the Host check runs first of all.
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Thread-Id"],
                           expose_headers=["X-Assistant-Route", "X-Assistant-Escalated", "X-Assistant-Thread-Id"])
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    add_error_handlers(app)
    for area in (operations, page, threads, documents, chat):
        app.include_router(area.router)
    return app
