"""How the web app listens: uvicorn, with a deadline on every request's headers.

uvicorn bounds an idle keep-alive connection but not one that is sending its headers (its keep-alive timer is reset
by every byte): a client that trickles header bytes holds a connection open forever, and 1,500 of them cost the
server nothing to open. Here every connection must finish a request's headers within ``header_timeout_s`` of
opening (and of its previous response ending), or it is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from assistant.core.settings import ServerSettings


def deadline_protocol(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, closing a connection whose request headers are not complete in time."""
    base: Any = AutoHTTPProtocol

    class HeaderDeadlineProtocol(base):  # type: ignore[misc]
        """Arms a timer when the connection opens and after each response; a request whose headers completed
        since (uvicorn then starts a new request-response cycle) disarms it."""

        _deadline: asyncio.TimerHandle | None = None
        _armed_cycle: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._armed_cycle = self.cycle
            self._deadline = self.loop.call_later(header_timeout_s, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            if self.cycle is self._armed_cycle and not self.transport.is_closing():
                self.transport.close()  # no request's headers arrived in time

    return HeaderDeadlineProtocol


def server_config(app: Any, settings: ServerSettings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration serving ``app`` on ``settings.host``:``settings.port`` (``options`` override)."""
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                          http=deadline_protocol(settings.header_timeout_s), **options)
