"""Documents: list, upload (indexed by background jobs), follow and cancel jobs, read one, remove one."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from assistant.documents import UPLOAD_PREFIX, check_upload, list_documents, view_document
from assistant.server.services import ServicesDep

UPLOAD_PATH = "/v1/documents"
JOB_ID = r"^[0-9a-f]{32}$"

router = APIRouter(prefix=UPLOAD_PATH)


@router.get("")
def get_documents(shared: ServicesDep, prefix: str = Query("", max_length=500),
                  offset: int = Query(0, ge=0, le=1_000_000_000),
                  limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """The indexed documents whose id starts with ``prefix``."""
    total, documents = list_documents(shared.assistant.retriever, prefix=prefix, offset=offset, limit=limit)
    return {"object": "list", "total": total, "data": documents}


@router.post("", status_code=202)
async def upload_documents(request: Request, shared: ServicesDep) -> JSONResponse:
    """Queue multipart files (fields named ``file``) for indexing; every file is checked before any is queued, so
    one bad file refuses the request."""
    queue = shared.indexing()
    form = await request.form(max_files=20, max_fields=20)
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise HTTPException(400, "send the files as multipart/form-data fields named file")
    checked = []
    for upload in files:
        data = await upload.read()
        checked.append((check_upload(upload.filename or "", data, shared.settings.max_upload_bytes), data))
    queued = await asyncio.to_thread(queue.submit_all, checked)  # writes the staged files
    return JSONResponse({"object": "list", "data": [job.to_dict() for job in queued]}, status_code=202)


@router.get("/jobs")
def list_jobs(shared: ServicesDep) -> dict[str, Any]:
    """The recent indexing jobs."""
    return {"object": "list", "data": [job.to_dict() for job in shared.indexing().recent()]}


@router.get("/jobs/{job_id}")
def get_job(shared: ServicesDep, job_id: str = PathParam(pattern=JOB_ID)) -> dict[str, Any]:
    """One indexing job."""
    job = shared.indexing().get(job_id)
    if job is None:
        raise HTTPException(404, f"no indexing job {job_id!r}")
    return job.to_dict()


@router.post("/jobs/{job_id}/cancel")
def cancel_job(shared: ServicesDep, job_id: str = PathParam(pattern=JOB_ID)) -> dict[str, Any]:
    """Cancel a queued or running indexing job."""
    job = shared.indexing().cancel(job_id)
    if job is None:
        raise HTTPException(404, f"no indexing job {job_id!r}")
    if job.state in ("done", "failed"):
        raise HTTPException(409, f"indexing job {job_id!r} has already finished ({job.state})")
    return job.to_dict()


@router.get("/{doc_id:path}")
def get_document(doc_id: str, shared: ServicesDep) -> dict[str, Any]:
    """A document's text and its passages, with headings and offsets."""
    view = view_document(shared.assistant.retriever, doc_id)
    if view is None:
        raise HTTPException(404, f"no document {doc_id!r}")
    return view.to_dict()


@router.delete("/{doc_id:path}")
async def delete_document(doc_id: str, shared: ServicesDep) -> dict[str, Any]:
    """Remove an uploaded document (any document with ``server.remove_any_document``)."""
    queue = shared.indexing()
    if doc_id not in queue.retriever.follow().documents():
        raise HTTPException(404, f"no document {doc_id!r}")
    if not doc_id.startswith(UPLOAD_PREFIX) and not shared.settings.remove_any_document:
        raise HTTPException(403, f"{doc_id!r} was not uploaded through this API; remove it with `assistant index "
                                 "remove` (or set server.remove_any_document)")
    # The removal waits for the index's writer in its own thread, never in one that answers questions.
    chunks = await asyncio.wrap_future(queue.writes.submit(lambda: queue.retriever.remove(doc_id)))
    if not chunks:
        raise HTTPException(404, f"no document {doc_id!r}")
    return {"id": doc_id, "object": "document.deleted", "deleted": True, "chunks": chunks}
