"""Two real `assistant serve` processes (the shipped small model) on one real PostgreSQL: a thread begun on one
continues on the other, and a replica killed with SIGKILL loses no answered turn."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import fresh_database, postgres_server
from tests.servers import start_serve


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_server() as url:
        yield fresh_database(url, "replicas")


def _replica(root: Path, name: str, database: str) -> tuple[Any, str]:
    folder = root / name
    folder.mkdir()
    return start_serve(folder / "serve.log", {"ASSISTANT_STORAGE__URL": database,
                                              "ASSISTANT_SERVER__PRELOAD_LARGE": "false",
                                              "ASSISTANT_RETRIEVAL__INDEX_DIR": str(folder / "index")})


def _ask(url: str, question: str, thread: str) -> dict[str, Any]:
    response = httpx.post(url + "/v1/chat/completions", timeout=300, json={
        "model": "assistant", "thread_id": thread, "max_tokens": 24,
        "messages": [{"role": "user", "content": question}]})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_thread_moves_between_replicas_and_survives_a_killed_one(tmp_path: Path, database: str) -> None:
    first, first_url = _replica(tmp_path, "one", database)
    second, second_url = _replica(tmp_path, "two", database)
    try:
        assert "threads: PostgreSQL postgresql://postgres@127.0.0.1:" in (tmp_path / "one" / "serve.log").read_text()
        answered = _ask(first_url, "Write a haiku about the sea.", "shared-thread")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        # the answered turn outlived the replica that answered it
        kept = httpx.get(second_url + "/v1/threads/shared-thread", timeout=30).json()
        assert [message["content"] for message in kept["messages"]] == [
            "Write a haiku about the sea.", answered["choices"][0]["message"]["content"]]
        _ask(second_url, "Now one about the mountains.", "shared-thread")
        listed = httpx.get(second_url + "/v1/threads", timeout=30).json()
        assert [(thread["id"], thread["turns"]) for thread in listed["data"]] == [("shared-thread", 2)]
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
