"""Two real `assistant serve` processes (the shipped models) on one real PostgreSQL and one index directory: a file
uploaded through one is answered from on the other, a thread begun on one continues on the other, and a replica
killed with SIGKILL, between turns or in the middle of a turn and of an indexing job, loses no answered turn and no
queued job."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import fresh_database, postgres_server
from tests.servers import start_serve
from tests.waiting import until

KETTLE = (b"# Tarnwick Q7 kettle: warranty\n\nThe Tarnwick Q7 kettle carries a warranty of 38 months from the date "
          b"of purchase. Claims go to the Tarnwick service desk in Leeds.\n")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_server() as url:
        yield fresh_database(url, "replicas")


def _replica(root: Path, name: str, database: str) -> tuple[Any, str]:
    folder = root / name
    folder.mkdir()
    return start_serve(folder / "serve.log", {"ASSISTANT_STORAGE__URL": database,
                                              "ASSISTANT_SERVER__PRELOAD_LARGE": "false",
                                              "ASSISTANT_RETRIEVAL__INDEX_DIR": str(root / "shared-index")})


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
        upload = httpx.post(second_url + "/v1/documents", files={"file": ("kettle.md", KETTLE)}, timeout=60)
        assert upload.status_code == 202, upload.text
        job = upload.json()["data"][0]
        deadline = time.monotonic() + 120
        while job["state"] not in ("done", "failed", "cancelled"):  # followed through the other replica
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
            job = httpx.get(f"{first_url}/v1/documents/jobs/{job['id']}", timeout=30).json()
        assert job["state"] == "done", job
        answered = _ask(first_url, "How many months of warranty does the Tarnwick Q7 kettle have?", "shared-thread")
        assert "38" in answered["choices"][0]["message"]["content"], answered
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        # the answered turn outlived the replica that answered it
        kept = httpx.get(second_url + "/v1/threads/shared-thread", timeout=30).json()
        assert [message["content"] for message in kept["messages"]] == [
            "How many months of warranty does the Tarnwick Q7 kettle have?",
            answered["choices"][0]["message"]["content"]]
        _ask(second_url, "Where do warranty claims go?", "shared-thread")
        listed = httpx.get(second_url + "/v1/threads", timeout=30).json()
        assert [(thread["id"], thread["turns"]) for thread in listed["data"]] == [("shared-thread", 2)]
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def _manual(paragraphs: int) -> bytes:
    """A markdown manual long enough that indexing it takes seconds; its last section holds one findable fact."""
    parts = ["# Quillon pump manual\n"]
    for number in range(paragraphs):
        parts.append(f"\n## Section {number}\n\nPart {number} of the pump is serviced every {number % 11 + 2} weeks; "
                     f"its seal number {number * 7 + 3} is checked by the operator on shift {number % 3 + 1}.\n")
    parts.append("\n## Pressure rating\n\nThe Quillon valve is rated for 42 bar.\n")
    return "".join(parts).encode()


def test_a_replica_killed_mid_turn_and_mid_job_loses_no_answered_turn_and_no_queued_job(tmp_path: Path,
                                                                                         database: str) -> None:
    first, first_url = _replica(tmp_path, "one", database)
    second, second_url = _replica(tmp_path, "two", database)
    try:
        question = "What is 12 * 12?"
        answered = _ask(first_url, question, "killed-mid-turn")["choices"][0]["message"]["content"]
        # mid-turn: a streamed answer is being written when its replica dies
        with httpx.stream("POST", first_url + "/v1/chat/completions", timeout=300, json={
                "model": "assistant", "thread_id": "killed-mid-turn", "stream": True, "max_tokens": 200,
                "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]}) as stream:
            for line in stream.iter_lines():
                if '"content": "' in line and '"content": ""' not in line:
                    break  # text is streaming
            # mid-job: an upload is being indexed by the same replica
            upload = httpx.post(first_url + "/v1/documents", files={"file": ("quillon.md", _manual(3000))},
                                timeout=60)
            assert upload.status_code == 202, upload.text
            job = upload.json()["data"][0]
            until(lambda: httpx.get(f"{second_url}/v1/documents/jobs/{job['id']}", timeout=30).json()["state"]
                  == "indexing", 120, "the job never started", every=0.1)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        # the answered turn is kept; the thread goes on on the other replica
        kept = httpx.get(second_url + "/v1/threads/killed-mid-turn", timeout=30).json()
        assert [message["content"] for message in kept["messages"]][:2] == [question, answered]
        _ask(second_url, "What is 7 + 8?", "killed-mid-turn")
        contents = [message["content"] for message in
                    httpx.get(second_url + "/v1/threads/killed-mid-turn", timeout=30).json()["messages"]]
        assert contents[:2] == [question, answered] and contents[-2] == "What is 7 + 8?" and "15" in contents[-1]
        # the job the dead replica was running is taken again by the living one and finished
        state: dict[str, Any] = {}

        def finished() -> bool:
            state.update(httpx.get(f"{second_url}/v1/documents/jobs/{job['id']}", timeout=30).json())
            return state["state"] in ("done", "failed", "cancelled")

        until(finished, 300, "the orphaned job was never finished", every=1.0)
        assert state["state"] == "done", state
        reply = _ask(second_url, "What pressure is the Quillon valve rated for?", "after-the-job")
        assert "42" in reply["choices"][0]["message"]["content"], reply
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
