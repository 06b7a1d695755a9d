"""Conversation threads: list (by client, searched), read, export, rename, delete, and feedback on an answer."""

from __future__ import annotations

import json
import time
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from assistant.core.text import normalize_question
from assistant.core.threads import CLIENT_PATTERN, THREAD_ID_PATTERN, Feedback, ThreadRecord
from assistant.server.services import ServicesDep

router = APIRouter(prefix="/v1/threads")


class ThreadChange(BaseModel):
    """A change to a thread: its title."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, pattern=r"\S")


class FeedbackChange(BaseModel):
    """A verdict on an answer (``rating`` None clears it) and, optionally, what the person said."""

    model_config = ConfigDict(extra="forbid")

    rating: Literal["up", "down"] | None
    comment: str = Field("", max_length=2000)


@router.get("")
def list_threads(shared: ServicesDep, limit: int = Query(100, ge=1, le=1000),
                 offset: int = Query(0, ge=0, le=1_000_000_000),
                 client: str | None = Query(None, pattern=CLIENT_PATTERN, description=(
                     "Only threads made by this client (web: the page; mcp; api; an agent's tag).")),
                 q: str | None = Query(None, max_length=200, description=(
                     "Only threads whose title, questions or answers hold this text."))) -> dict[str, Any]:
    """The threads, most recently updated first."""
    query = " ".join(normalize_question(q).split()) if q else None
    total, threads = shared.assistant.threads.threads(limit=limit, offset=offset, client=client, query=query or None)
    return {"object": "list", "total": total, "data": [thread.to_dict() for thread in threads]}


def _record(shared: ServicesDep, thread_id: str) -> ThreadRecord:
    record = shared.assistant.thread(thread_id)
    if record is None:
        raise HTTPException(404, f"no thread {thread_id!r}")
    return record


@router.get("/{thread_id}")
def get_thread(shared: ServicesDep, thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
    """One thread's transcript."""
    return _record(shared, thread_id).to_dict()


@router.get("/{thread_id}/export")
def export_thread(shared: ServicesDep, thread_id: str = PathParam(pattern=THREAD_ID_PATTERN),
                  format: Literal["markdown", "json"] = "markdown") -> Response:
    """A thread as a file to keep: markdown (questions, answers, cited passages, feedback) or the JSON transcript
    (every answer's details and feedback, for evaluation)."""
    record = _record(shared, thread_id)
    name = quote(f"{record.summary.title[:60] or thread_id}.{'md' if format == 'markdown' else 'json'}")
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    if format == "json":
        return Response(json.dumps(record.to_dict(), ensure_ascii=False, indent=1), media_type="application/json",
                        headers=headers)
    return Response(record.markdown(), media_type="text/markdown; charset=utf-8", headers=headers)


@router.put("/{thread_id}/turns/{turn}/feedback")
def give_feedback(change: FeedbackChange, shared: ServicesDep, thread_id: str = PathParam(pattern=THREAD_ID_PATTERN),
                  turn: int = PathParam(ge=0, le=1_000_000)) -> dict[str, Any]:
    """Store a person's verdict on one answer of a thread (kept with the turn and exported with it)."""
    feedback = None if change.rating is None else Feedback(change.rating, normalize_question(change.comment).strip(),
                                                           time.time())
    if not shared.assistant.threads.give_feedback(thread_id, turn, feedback):
        raise HTTPException(404, f"no turn {turn} in thread {thread_id!r}")
    return {"thread_id": thread_id, "turn": turn, "feedback": feedback.to_dict() if feedback else None}


@router.patch("/{thread_id}")
def rename_thread(change: ThreadChange, shared: ServicesDep,
                  thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
    """A thread's new title (control, format and bidi characters dropped)."""
    title = " ".join(normalize_question(change.title).split())
    if not title:
        raise HTTPException(400, "the title has no visible characters")
    if not shared.assistant.threads.rename(thread_id, title):
        raise HTTPException(404, f"no thread {thread_id!r}")
    record = shared.assistant.threads.thread(thread_id)
    return record.summary.to_dict() if record is not None else {}


@router.delete("/{thread_id}")
def delete_thread(shared: ServicesDep, thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
    """Forget a thread: what the models remember and the transcript."""
    if shared.assistant.thread(thread_id) is None:
        raise HTTPException(404, f"no thread {thread_id!r}")
    shared.assistant.forget(thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}
