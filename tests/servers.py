"""A uvicorn server in a thread on a free loopback port, for the end-to-end server tests."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from assistant.api import Assistant
from assistant.server import create_app
from assistant.settings import ServerSettings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Running:
    """A uvicorn server in a thread on a free loopback port."""

    def __init__(self, assistant: Assistant, settings: ServerSettings) -> None:
        self.port = _free_port()
        config = uvicorn.Config(create_app(assistant, settings), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
