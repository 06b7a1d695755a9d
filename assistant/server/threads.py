"""Conversation threads: list, read, rename, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from assistant.core.text import normalize_question
from assistant.core.threads import THREAD_ID_PATTERN
from assistant.server.services import ServicesDep

router = APIRouter(prefix="/v1/threads")


class ThreadChange(BaseModel):
    """A change to a thread: its title."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, pattern=r"\S")


@router.get("")
def list_threads(shared: ServicesDep, limit: int = Query(100, ge=1, le=1000),
                 offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict[str, Any]:
    """The threads, most recently updated first."""
    total, threads = shared.assistant.threads.threads(limit=limit, offset=offset)
    return {"object": "list", "total": total, "data": [thread.to_dict() for thread in threads]}


@router.get("/{thread_id}")
def get_thread(shared: ServicesDep, thread_id: str = PathParam(pattern=THREAD_ID_PATTERN)) -> dict[str, Any]:
    """One thread's transcript."""
    record = shared.assistant.thread(thread_id)
    if record is None:
        raise HTTPException(404, f"no thread {thread_id!r}")
    return record.to_dict()


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
