"""What every request passes first: loopback binding, the API key, Host and Origin, body size and speed."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.routing import Match

from assistant.core.errors import ConfigError
from assistant.core.settings import ServerSettings
from assistant.mcp_server import MCP_PATH
from assistant.metrics import UNMATCHED, Metrics
from assistant.server.documents import UPLOAD_PATH
from assistant.server.errors import error_response


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
