"""Shared end-to-end test parts: a uvicorn server in a thread on a free loopback port, a slow scripted model, and
Debian's chromium driven by Selenium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from assistant.api import Assistant
from assistant.core.settings import ServerSettings
from assistant.listener import server_config
from assistant.server import create_app
from models.base import Completion, Message, StreamItem, TextDelta, Usage
from models.fake import FakeChatModel
from tests.waiting import free_port

ASSISTANT = str(Path(sys.executable).with_name("assistant"))


def start_serve(log: Path, env: Mapping[str, str], *, timeout: float = 300) -> tuple[subprocess.Popen[bytes], str]:
    """A real `assistant serve` process on a free loopback port, its output in ``log``, ``env`` added to the
    environment; returns once /health answers 200 (the process and its URL)."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen([ASSISTANT, "serve", "--port", str(port)], stdout=output, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, **env))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(log.read_text())
        time.sleep(0.5)


class Running:
    """A uvicorn server in a thread on a free loopback port."""

    def __init__(self, assistant: Assistant, settings: ServerSettings) -> None:
        self.port = free_port()
        config = server_config(create_app(assistant, settings), settings.model_copy(
            update={"host": "127.0.0.1", "port": self.port}))
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


SMALL_WRITES_CHAT = {"chat_start": "small"}
"""Assistant settings for servers over fake models whose small model writes the chat answers a test watches (chat
starts on the large model by default; the server and page behave the same whichever tier writes)."""


class GatedModel(FakeChatModel):
    """Streams ``words`` words, one each time the test (or a timer) lets it, and counts what it produced."""

    def __init__(self, name: str, words: int = 400, seconds_per_word: float = 0.02) -> None:
        super().__init__(name=name)
        self.words = words
        self.seconds_per_word = seconds_per_word
        self.produced = 0
        self.started = threading.Event()
        self.stopped = threading.Event()

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[StreamItem]:
        self.started.set()
        self.stopped.clear()
        try:
            limit = min(self.words, int(options.get("max_tokens", self.words)))
            for index in range(limit):
                time.sleep(self.seconds_per_word)
                self.produced += 1
                yield TextDelta(f" word{index}")
            finish = "length" if limit < self.words else "stop"
            yield Completion(" ".join(f"word{i}" for i in range(limit)), finish,
                             Usage(self.name, 3, limit, 0.0, 0.0, self.parameters, 0.0), [0.9] * limit)
        finally:
            self.stopped.set()

    def chat(self, messages: Sequence[Message], **options: Any) -> Completion:
        final = None
        for item in self.stream(messages, **options):
            final = item
        assert isinstance(final, Completion)
        return final


def browser(width: int = 1000, height: int = 900) -> Any:
    """Headless Debian chromium under Selenium (skipped when it is missing, except in CI, where it must be there)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium and chromium-driver are missing; scripts/test.sh installs them")
        pytest.skip("chromium is not installed (bash scripts/test.sh installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    page = webdriver.Chrome(service=Service(driver), options=options)
    if width < 500:  # headless chromium's window is never narrower than 500 px: a phone's width is emulated
        page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                             {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    return page


def ask_on_page(page: Any, question: str, count: int, timeout: float = 30) -> Any:
    """Type ``question`` into the chat page, press Enter, and return the ``count``-th turn once it is answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    page.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
    WebDriverWait(page, timeout).until(until.presence_of_element_located(
        (By.CSS_SELECTOR, f".turn:nth-child({count}) .answer[data-state='done']")))
    return page.find_elements(By.CSS_SELECTOR, ".turn")[count - 1]
