"""Regression tests for the second outside probe (issue #34): the documents API and the last 500s.

Each test failed on the main the issue was filed on (1a49809). Fakes stand in for the models and the embedder; the
server runs over a real socket; files are parsed by the real parsers in their child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from assistant.admission import Admission
from assistant.api import Assistant
from assistant.core.settings import ServerSettings, Settings
from assistant.documents import safe_file_name
from assistant.indexing import STAGING_FOLDER, IndexingJob
from assistant.server.wire import header_value
from models.fake import FakeChatModel
from retrieval.documents import Document, read_file
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
from tests.documents import slow_pdf
from tests.e2e.test_hardening import OverflowingModel
from tests.servers import SMALL_WRITES_CHAT, Running
from tests.waiting import until

pytestmark = pytest.mark.usefixtures("untrained_escalation")  # fake models: see tests/conftest.py

CHAT = "/v1/chat/completions"
DOCUMENTS = "/v1/documents"


def _assistant(tmp_path: Path, *, uploads: int = 0, small: FakeChatModel | None = None,
               **retrieval: Any) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": SMALL_WRITES_CHAT,
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none", **retrieval}})
    retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
    documents = [Document("notes/cli.md", "Added from the command line: the heron nests by the weir.", "CLI")]
    documents += [Document(f"uploads/doc-{number}.md", f"Upload number {number} mentions quartz {number}.")
                  for number in range(uploads)]
    retriever.add_documents(documents, progress=False)
    return Assistant.from_parts(small or FakeChatModel(name="small"), FakeChatModel(name="large"), FakeEmbedder(),
                                retriever, settings, tmp_path / "threads.sqlite")


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Assistant]:
    assistant = _assistant(tmp_path)
    yield assistant
    assistant.close()


def _ask(content: str, model: str = "assistant", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def _upload(url: str, name: str, data: bytes, **headers: str) -> httpx.Response:
    return httpx.post(url + DOCUMENTS, files={"file": (name, data)}, headers=headers, timeout=30)


def _job(url: str, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}{DOCUMENTS}/jobs/{job_id}").json())


def _finished(url: str, job_id: str, seconds: float = 30) -> dict[str, Any]:
    until(lambda: _job(url, job_id)["state"] not in ("queued", "indexing"), seconds, f"job {job_id} never ended")
    return _job(url, job_id)


@contextlib.contextmanager
def _writer_held(retriever: Retriever) -> Iterator[None]:
    """Hold the index's writer lock from another thread, as an indexing job does while it embeds."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with retriever.writing():
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    holding.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def _reader_children() -> list[int]:
    """Process ids of this process's document-reader children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (entry / "status").read_text()
            parent = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
            state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
            if int(parent) == os.getpid() and state != "Z" and b"retrieval.reader" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


# ---- finding 1: removals wait for the writer in their own thread, never in one that answers ----------------------

def test_abandoned_deletes_do_not_stall_chat_and_unknown_ids_answer_at_once(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path, uploads=40)
    retriever = assistant.retriever
    assert retriever is not None
    with Running(assistant, ServerSettings()) as running, _writer_held(retriever):
        writes = running.server.config.app.state.services.jobs.writes
        connections = []
        for number in range(40):  # more than any default thread pool holds
            connection = socket.create_connection(("127.0.0.1", running.port))
            connection.sendall(f"DELETE /v1/documents/uploads/doc-{number}.md HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Length: 0\r\n\r\n".encode())
            connections.append(connection)
            if number == 9:  # the first ten are in the line before the rest arrive (it holds 16; the rest get 429)
                until(lambda: writes.pending == 10, 10, "the first ten removals never queued")
        for connection in connections[10:]:  # abandoned, as with curl -m1
            connection.close()
        time.sleep(0.5)
        unknown = httpx.delete(running.url + DOCUMENTS + "/uploads/nope.md", timeout=5)
        started = time.monotonic()
        answer = httpx.post(running.url + CHAT, json=_ask("What is 2+2?"), timeout=60)
        waited = time.monotonic() - started
    assert unknown.status_code == 404
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "4"
    assert waited < 5, f"2+2 waited {waited:.1f} s behind removals"
    statuses = []
    for connection in connections[:10]:  # the first ones waited their turn and were done
        connection.settimeout(30)
        statuses.append(int(connection.recv(100).split()[1]))
        connection.close()
    assert statuses == [200] * 10
    assert not {f"uploads/doc-{number}.md" for number in range(10)} & set(retriever.follow().documents())
    assistant.close()


# ---- finding 2: no other origin changes anything --------------------------------------------------------------

def test_a_foreign_origin_cannot_change_state_key_or_no_key(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path)
    evil = {"Origin": "https://evil.example"}
    with Running(assistant, ServerSettings()) as running:
        url = running.url
        own = {"Origin": url}
        assert httpx.post(url + CHAT, json=_ask("What is 2+2?"), headers={"X-Thread-Id": "t1"}).status_code == 200
        refused = [
            _upload(url, "evil.md", b"# Planted\n\nThe treasure is under the old mill.", **evil),
            httpx.post(url + CHAT, json=_ask("What is 3+3?"), headers={**evil, "X-Thread-Id": "t1"}),
            httpx.patch(url + "/v1/threads/t1", json={"title": "pwned"}, headers=evil),
            httpx.delete(url + "/v1/threads/t1", headers=evil),
            httpx.delete(url + DOCUMENTS + "/notes/cli.md", headers=evil),
            httpx.post(url + CHAT, json=_ask("What is 3+3?"), headers={"Origin": "null"}),
        ]
        for response in refused:
            assert response.status_code == 403 and response.json()["error"]["code"] == "foreign_origin", response.text
        assert httpx.get(url + DOCUMENTS + "/jobs").json()["data"] == []
        assert httpx.get(url + "/v1/threads/t1").json()["title"] == "What is 2+2?"
        # The page's own origin, and clients that send no Origin (curl, SDKs), still work.
        assert _upload(url, "mine.md", b"# Mine\n\nFine.", **own).status_code == 202
        assert httpx.patch(url + "/v1/threads/t1", json={"title": "Sums"}, headers=own).status_code == 200
        assert httpx.get(url + DOCUMENTS, headers=evil).status_code == 200  # reads: CORS keeps the page from them
    with Running(assistant, ServerSettings(api_key=SecretStr("k"), cors_origins=["https://app.example"])) as keyed:
        key = {"Authorization": "Bearer k"}
        assert httpx.delete(keyed.url + "/v1/threads/t1", headers={**key, **evil}).status_code == 403
        assert httpx.delete(keyed.url + "/v1/threads/t1",
                            headers={**key, "Origin": "https://app.example"}).status_code == 200
    assistant.close()


# ---- finding 3: a document id never reaches a header raw ------------------------------------------------------

def test_a_document_id_with_control_characters_cannot_break_or_inject_headers(tmp_path: Path) -> None:
    line = json.dumps({"text": "The Pellow tower was designed by Mira Thorne.", "id": "x\r\nX-Injected: yes\x00"})
    staged = tmp_path / "planted.jsonl"
    staged.write_text(line + "\n")
    assert [document.doc_id for document in read_file(staged, "planted.jsonl")] == ["xX-Injected: yes"]
    assert header_value("uploads/a.jsonl:x\r\nX-Injected: yes#0,b#1") == \
        "uploads/a.jsonl:x%0D%0AX-Injected: yes#0,b#1"
    assert header_value("uploads/報告.md#0") == "uploads/%E5%A0%B1%E5%91%8A.md#0"
    assistant = _assistant(tmp_path)
    with Running(assistant, ServerSettings()) as running:
        job = _upload(running.url, "planted.jsonl", line.encode()).json()["data"][0]
        assert _finished(running.url, job["id"])["documents"] == ["uploads/planted.jsonl:xX-Injected: yes"]
        answer = httpx.post(running.url + CHAT, json=_ask("Who designed the Pellow tower?"), timeout=30)
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
        assert "x-injected" not in answer.headers
        cited = answer.headers["x-assistant-sources"]
        assert "\r" not in cited and "\n" not in cited
    assistant.close()


# ---- finding 4: every parser runs under a budget in a process that can be killed; jobs can be cancelled ---------

def test_a_pdf_that_parses_for_ever_is_refused_at_its_budget_and_the_queue_moves_on(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path, parse_timeout_s=1.0)
    with Running(assistant, ServerSettings()) as running:
        slow = _upload(running.url, "slow.pdf", slow_pdf(pages=4)).json()["data"][0]
        after = _upload(running.url, "after.md", b"# After\n\nThe queue moved on.").json()["data"][0]
        started = time.monotonic()
        failed = _finished(running.url, slow["id"])
        assert failed["state"] == "failed" and "took longer than 1 s" in failed["message"], failed
        assert time.monotonic() - started < 10
        assert _finished(running.url, after["id"])["state"] == "done"
    assistant.close()


def test_a_job_can_be_cancelled_while_it_waits_or_parses_and_shutdown_kills_the_parser(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path)
    running = Running(assistant, ServerSettings())
    with running:
        url = running.url
        parsing = _upload(url, "slow.pdf", slow_pdf(pages=12)).json()["data"][0]
        waiting = _upload(url, "waiting.md", b"# Waiting\n\nNever indexed.").json()["data"][0]
        until(lambda: _job(url, parsing["id"])["state"] == "indexing" and _reader_children(), 20, "never parsed")
        cancelled = httpx.post(f"{url}{DOCUMENTS}/jobs/{waiting['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert httpx.post(f"{url}{DOCUMENTS}/jobs/{parsing['id']}/cancel").status_code == 200
        assert _finished(url, parsing["id"], seconds=5)["state"] == "cancelled"
        assert httpx.post(f"{url}{DOCUMENTS}/jobs/{'0' * 32}/cancel").status_code == 404
        assert "uploads/waiting.md" not in httpx.get(url + DOCUMENTS).text
        # A shutdown while a file is being parsed kills the parser at once.
        _upload(url, "slow-again.pdf", slow_pdf(pages=12))
        until(lambda: bool(_reader_children()), 20, "the second file was never parsed")
        started = time.monotonic()
    assert time.monotonic() - started < 8 and not running.thread.is_alive()
    until(lambda: not _reader_children(), 5, "the parser outlived the server")
    assistant.close()


# ---- finding 5: the indexing line is bounded, staged on disk, and says when to come back ------------------------

def test_a_full_indexing_queue_answers_429_with_a_retry_after(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path)
    retriever = assistant.retriever
    assert retriever is not None
    with Running(assistant, ServerSettings(max_queued_uploads=2)) as running, _writer_held(retriever):
        url = running.url
        first = _upload(url, "first.md", b"# First\n\nEmbedding waits for the writer.").json()["data"][0]
        until(lambda: _job(url, first["id"])["state"] == "indexing", 20, "the first job never started")
        queued = [_upload(url, f"q{number}.md", b"x" * 3000) for number in range(2)]
        assert [response.status_code for response in queued] == [202, 202]
        full = _upload(url, "one-too-many.md", b"y" * 3000)
        assert full.status_code == 429 and full.json()["error"]["code"] == "indexing_queue_full"
        assert int(full.headers["retry-after"]) >= 1
        staged = list((retriever.directory / STAGING_FOLDER).glob("*/q*.md"))
        assert len(staged) == 2  # waiting uploads live on disk, not in the server's memory
    assistant.close()


# ---- finding 6: names in any script stay apart; a replacement is said ------------------------------------------

def test_non_ascii_file_names_do_not_overwrite_each_other(tmp_path: Path) -> None:
    assert safe_file_name("報告.md") == "報告.md" and safe_file_name("Übersicht 2026.md") == "Übersicht 2026.md"
    assistant = _assistant(tmp_path)
    with Running(assistant, ServerSettings()) as running:
        url = running.url
        report = _upload(url, "報告.md", "# 報告\n\n売上は増えた。".encode()).json()["data"][0]
        minutes = _upload(url, "議事.md", "# 議事\n\n会議は月曜日。".encode()).json()["data"][0]
        assert _finished(url, report["id"])["documents"] == ["uploads/報告.md"]
        assert _finished(url, minutes["id"])["documents"] == ["uploads/議事.md"]
        listed = httpx.get(url + DOCUMENTS, params={"prefix": "uploads/"}).json()
        assert {item["id"] for item in listed["data"]} == {"uploads/報告.md", "uploads/議事.md"}
        again = _upload(url, "報告.md", "# 報告\n\n売上は減った。".encode()).json()["data"][0]
        assert "replaced the earlier upload" in _finished(url, again["id"])["message"]
    assistant.close()


# ---- finding 7: the last plain-text 500s -----------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_malformed_tool_calls_and_tool_choice_are_clean_400s(instance: Assistant, stream: bool) -> None:
    tools = [{"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}]
    bodies = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{}]},
                      {"role": "user", "content": "again"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [1]},
                      {"role": "user", "content": "again"}]},
        {"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": {"function": "g"}},
        {"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": {"type": "function"}},
    ]
    with Running(instance, ServerSettings()) as running:
        for model in ("small", "large"):
            for body in bodies:
                response = httpx.post(running.url + CHAT, json={"model": model, "stream": stream, **body})
                assert response.status_code == 400, (model, body, response.text)
                assert response.json()["error"]["type"] == "invalid_request_error"
        call = {"id": "c1", "type": "function", "function": {"name": "g", "arguments": "{\"x\": 1}"}}
        good = {"model": "small", "stream": stream, "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}], "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "g"}}}
        assert httpx.post(running.url + CHAT, json=good).status_code == 200


# ---- finding 8: queued jobs survive a restart; staging lives beside the index and is cleaned -------------------

def test_queued_jobs_survive_a_restart_and_staging_is_cleaned(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path, parse_timeout_s=1.0)
    retriever = assistant.retriever
    assert retriever is not None
    staging = retriever.directory / STAGING_FOLDER
    with Running(assistant, ServerSettings()) as running:
        blocking = _upload(running.url, "slow.pdf", slow_pdf(pages=12)).json()["data"][0]
        queued = _upload(running.url, "later.md", b"# Later\n\nIndexed after a restart.").json()["data"][0]
    assert {path.name for path in staging.iterdir() if path.is_dir()} == {blocking["id"], queued["id"]}
    # As a kill -9 leaves things: a job caught indexing, a job whose staged file is gone, a stray folder.
    crashed = IndexingJob("c" * 32, "crashed.md", "uploads/crashed.md", state="indexing", started=time.time())
    (staging / crashed.id).mkdir()
    (staging / crashed.id / "crashed.md").write_text("# Crashed\n\nIndexed after all.")
    (staging / f"{crashed.id}.json").write_text(json.dumps(crashed.to_dict()))
    lost = IndexingJob("d" * 32, "lost.md", "uploads/lost.md")
    (staging / f"{lost.id}.json").write_text(json.dumps(lost.to_dict()))
    (staging / "stray").mkdir()
    with Running(assistant, ServerSettings()) as running:
        url = running.url
        assert _finished(url, queued["id"])["state"] == "done"
        assert _finished(url, crashed.id)["state"] == "done"
        assert "restarted" in _finished(url, lost.id)["message"]
        assert "took longer" in _finished(url, blocking["id"])["message"]  # requeued, then refused at its budget
        listed = httpx.get(url + DOCUMENTS, params={"prefix": "uploads/"}).json()
        assert {item["id"] for item in listed["data"]} == {"uploads/later.md", "uploads/crashed.md"}
        until(lambda: not [path for path in staging.iterdir() if path.is_dir()], 5, "staged files were kept")
    assert not list(Path("/tmp").glob("assistant-upload-*")) or all(
        path.stat().st_mtime < time.time() - 3600 for path in Path("/tmp").glob("assistant-upload-*"))
    assistant.close()


# ---- finding 9: a running server follows the index another process writes -------------------------------------

def test_a_running_server_sees_what_assistant_index_add_adds(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path)
    retriever = assistant.retriever
    assert retriever is not None
    note = tmp_path / "new" / "kestrel.md"
    note.parent.mkdir()
    note.write_text("# Kestrel\n\nThe kestrel hovers over the verge at dusk.")
    environment = {**os.environ, "ASSISTANT_CACHE_DIR": str(tmp_path / "cache"),
                   "ASSISTANT_RETRIEVAL__EMBEDDER": "fake", "ASSISTANT_RETRIEVAL__INDEX_DIR": str(retriever.directory)}
    with Running(assistant, ServerSettings()) as running:
        before = httpx.get(running.url + DOCUMENTS).json()["total"]
        added = subprocess.run([sys.executable, "-c", "from assistant.cli import main; main()", "index", "add",
                                str(note.parent)], env=environment, capture_output=True, text=True, timeout=300)
        assert added.returncode == 0, added.stderr
        until(lambda: httpx.get(running.url + DOCUMENTS).json()["total"] == before + 1, 10,
               "the server never saw the new document")
        assert retriever.search("kestrel verge dusk", k=1)[0].doc_id == "new/kestrel.md"
    assistant.close()


# ---- finding 10: the smaller ones ------------------------------------------------------------------------------

def test_a_streamed_context_overflow_is_a_400_like_the_unstreamed_one(tmp_path: Path) -> None:
    assistant = _assistant(tmp_path, small=OverflowingModel(name="small"))
    with Running(assistant, ServerSettings()) as running:
        for model in ("small", "assistant"):
            response = httpx.post(running.url + CHAT, json=_ask("Tell me about " + "the sea and " * 400, model,
                                                                  stream=True))
            assert response.status_code == 400, (model, response.text)
            assert response.json()["error"]["code"] == "context_length_exceeded"
    assistant.close()


def test_slow_request_headers_are_cut_off(instance: Assistant) -> None:
    with Running(instance, ServerSettings(header_timeout_s=1.0)) as running, \
            socket.create_connection(("127.0.0.1", running.port)) as connection:
        connection.settimeout(10)
        started = time.monotonic()
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        with contextlib.suppress(OSError):
            for _ in range(20):  # a header line every 0.3 s: each byte used to reset uvicorn's only timer
                time.sleep(0.3)
                connection.sendall(b"X-Slow: 1\r\n")
        closed = connection.recv(100) == b""
        assert closed and time.monotonic() - started < 4
        # A request whose headers arrive in time, and a kept-alive connection's next one, are served.
        with httpx.Client() as client:
            assert client.get(running.url + "/health").status_code == 200
            time.sleep(1.5)
            assert client.get(running.url + "/health").status_code == 200


def test_the_api_docs_need_the_key_when_one_is_set(instance: Assistant) -> None:
    with Running(instance, ServerSettings(api_key=SecretStr("k"))) as running:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert httpx.get(running.url + path).status_code == 401, path
            assert httpx.get(running.url + path, headers={"Authorization": "Bearer k"}).status_code == 200, path


def test_the_api_removes_only_what_it_uploaded_unless_told_otherwise(instance: Assistant) -> None:
    with Running(instance, ServerSettings()) as running:
        refused = httpx.delete(running.url + DOCUMENTS + "/notes/cli.md")
        assert refused.status_code == 403 and "assistant index remove" in refused.json()["error"]["message"]
    with Running(instance, ServerSettings(remove_any_document=True)) as running:
        assert httpx.delete(running.url + DOCUMENTS + "/notes/cli.md").json()["chunks"] == 1


def test_retry_after_is_when_the_first_running_request_should_end() -> None:
    async def full_line() -> int:
        line = Admission(concurrency=2, queue_size=16)
        line._durations.extend([3.0] * 10)
        first, second = await line.acquire(), await line.acquire()
        line.waiting = 16
        try:
            return line.retry_after()
        finally:
            first.release()
            second.release()

    # Two requests run, sixteen wait: the line has room again when the first running one ends (typically 3 s).
    assert 1 <= asyncio.run(full_line()) <= 3


def test_thread_titles_lose_control_and_bidi_characters(instance: Assistant) -> None:
    with Running(instance, ServerSettings()) as running:
        url = running.url
        assert httpx.post(url + CHAT, json=_ask("What is 2+2?"), headers={"X-Thread-Id": "t"}).status_code == 200
        renamed = httpx.patch(url + "/v1/threads/t", json={"title": "Sums\x00 \u202egnp.exe"})
        assert renamed.status_code == 200 and renamed.json()["title"] == "Sums gnp.exe"
        assert httpx.patch(url + "/v1/threads/t", json={"title": "\u202e\x00"}).status_code == 400
