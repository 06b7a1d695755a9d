"""The chat page and its static files, served with a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
# The page runs only its own scripts and styles, loads nothing from elsewhere, and cannot be framed: model text
# and retrieved passages (rendered as sanitised markdown) can never run script or fetch remote content.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".txt": "text/plain"}
STATIC_FILES = {path.relative_to(STATIC).as_posix(): path for path in STATIC.rglob("*")
                if path.is_file() and path.suffix in STATIC_TYPES}
"""The files shipped in assistant/static, by name: the only files ever served (never a path built from input)."""

router = APIRouter()


@router.get("/")
def page() -> FileResponse:
    """The chat page."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/static/{name:path}")
def static(name: str) -> FileResponse:
    """One of the page's shipped files."""
    path = STATIC_FILES.get(name)
    if path is None:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers=PAGE_HEADERS)
