"""OpenAI-shaped error bodies, and the app's handlers turning each known error into one."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.admission import QueueFullError
from assistant.documents import UploadRejectedError
from assistant.indexing import UploadQueueFullError
from models.errors import ContextOverflowError

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


def timeout_message(seconds: float) -> str:
    return f"the answer took longer than the {seconds:g} s limit and was stopped"


def add_error_handlers(app: FastAPI) -> None:
    """Every error the app knows, answered with :func:`error_response` and its status."""

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

    @app.exception_handler(UploadQueueFullError)
    async def uploads_busy(request: Request, error: UploadQueueFullError) -> Response:
        return error_response(429, error.message, code="indexing_queue_full",
                              headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(UploadRejectedError)
    async def rejected(request: Request, error: UploadRejectedError) -> Response:
        code = "file_too_large" if error.status == 413 else "unsupported_file"
        return error_response(error.status, error.message, code=code, param="file")
