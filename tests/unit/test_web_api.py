"""The threads and documents APIs of the chat page, in-process with fakes: listing, restoring, renaming, deleting
and regenerating threads; uploading (caps, types, sanitised names, key), indexing jobs and removing documents."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.api import Assistant
from assistant.core.settings import McpSettings, ServerSettings, Settings
from assistant.core.threads import TITLE_CHARS, ThreadStore, title_of
from assistant.documents import UploadRejectedError, check_upload, safe_file_name
from assistant.server import create_app
from models.fake import FakeChatModel
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
from retrieval.store import read_current
from tests.documents import minimal_pdf
from tests.routers import FixedRouter

CHAT = "/v1/chat/completions"


def _assistant(tmp_path: Path, *, index: bool = True) -> Assistant:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    retriever = None
    if index:
        retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
        retriever.add_documents([Document("sb50.txt", "The Denver Broncos won Super Bowl 50.", "Super Bowl 50")],
                                progress=False)
    small = FakeChatModel(name="small", price_per_million_tokens=0.05)
    large = FakeChatModel(name="large", price_per_million_tokens=0.15)
    return Assistant.from_parts(small, large, FakeEmbedder(), retriever,
                                settings, tmp_path / "threads.sqlite")


@pytest.fixture
def assistant(tmp_path: Path) -> Iterator[Assistant]:
    instance = _assistant(tmp_path)
    yield instance
    instance.close()


def _client(assistant: Assistant, **server: Any) -> TestClient:
    return TestClient(create_app(assistant, ServerSettings(**server), McpSettings(mount=False)),
                      base_url="http://127.0.0.1")


@pytest.fixture
def client(assistant: Assistant) -> Iterator[TestClient]:
    with _client(assistant, max_upload_bytes=4096) as running:
        yield running


def _ask(client: TestClient, question: str, thread: str | None = None, *, headers_client: str | None = None,
         **extra: Any) -> dict[str, Any]:
    headers = ({"X-Thread-Id": thread} if thread else {}) | ({"X-Assistant-Client": headers_client}
                                                             if headers_client else {})
    response = client.post(CHAT, json={"messages": [{"role": "user", "content": question}], **extra}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while job["state"] in ("queued", "indexing"):
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
        job = client.get(f"/v1/documents/jobs/{job['id']}").json()
    return job


def _upload(client: TestClient, name: str, data: bytes, **headers: str) -> Any:
    return client.post("/v1/documents", files={"file": (name, data)}, headers=headers)


# ---- the thread store -------------------------------------------------------------------------------------------

def test_the_store_lists_newest_first_and_replaces_a_regenerated_turn(tmp_path: Path) -> None:
    store = ThreadStore.open_sqlite(tmp_path / "t.sqlite")
    store.record("a", "first question", "one", {"route": "CHAT"})
    store.record("b", "other", "x", {})
    store.record("a", "second", "two", {})
    store.record("a", "second", "two again", {"route": "FACT"}, replace_from=1)
    total, listed = store.threads()
    assert total == 2 and [item.id for item in listed] == ["a", "b"]
    record = store.thread("a")
    assert record is not None and record.summary.title == "first question" and record.summary.turns == 2
    assert [(turn.question, turn.answer) for turn in record.turns] == [("first question", "one"),
                                                                       ("second", "two again")]
    assert record.turns[1].details == {"route": "FACT"}
    assert store.rename("a", "Renamed") and not store.rename("zzz", "x")
    assert store.delete("a") and not store.delete("a") and store.thread("a") is None
    store.close()


def test_titles_are_one_line_and_cut() -> None:
    assert title_of("  What is\n\tthis?  ") == "What is this?"
    long = title_of("word " * 100)
    assert len(long) == TITLE_CHARS and long.endswith("…")


# ---- the threads API --------------------------------------------------------------------------------------------

def test_threads_are_listed_restored_renamed_and_deleted(client: TestClient, assistant: Assistant) -> None:
    assert client.get("/v1/threads").json() == {"object": "list", "total": 0, "data": []}
    _ask(client, "What is 347 * 29?", "web-1")
    _ask(client, "Which team won Super Bowl 50?", "web-1")
    _ask(client, "Anonymous question, not kept")
    listed = client.get("/v1/threads").json()
    assert listed["total"] == 1
    assert {key: listed["data"][0][key] for key in ("id", "title", "turns")} == {
        "id": "web-1", "title": "What is 347 * 29?", "turns": 2}
    thread = client.get("/v1/threads/web-1").json()
    assert [message["role"] for message in thread["messages"]] == ["user", "assistant", "user", "assistant"]
    first = thread["messages"][1]
    assert first["content"] == "10063" and first["x_assistant"]["route"] == "MATH"
    assert set(first["x_assistant"]) >= {"confidence", "escalated", "escalation_reason", "sources", "cost",
                                         "wall_seconds"}
    assert thread["messages"][3]["x_assistant"]["route"] in ("FACT", "CHAT")
    renamed = client.patch("/v1/threads/web-1", json={"title": "  Sums\nand  sport "})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Sums and sport"
    assert client.patch("/v1/threads/web-1", json={"title": "   "}).status_code == 400
    assert client.patch("/v1/threads/nope", json={"title": "x"}).status_code == 404
    deleted = client.delete("/v1/threads/web-1")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert client.get("/v1/threads/web-1").status_code == 404
    assert client.delete("/v1/threads/web-1").status_code == 404
    assert assistant.history("web-1") == []


def test_threads_carry_their_client_and_are_searched_rated_and_exported(client: TestClient) -> None:
    """The page lists its own threads (agents' apart), finds a thread by what was said in it, stores a thumbs up or
    down with the answer, and exports a thread as markdown or JSON with that feedback."""
    _ask(client, "What is 347 * 29?", "page-1", headers_client="web")
    _ask(client, "Which team won Super Bowl 50?", "agent-1")
    assert client.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}]},
                       headers={"X-Assistant-Client": "Not A Tag!"}).status_code == 400
    mine = client.get("/v1/threads", params={"client": "web"}).json()
    assert [thread["id"] for thread in mine["data"]] == ["page-1"] and mine["data"][0]["client"] == "web"
    assert client.get("/v1/threads/agent-1").json()["client"] == "api"
    assert client.get("/v1/threads", params={"client": "api"}).json()["total"] == 1
    assert [t["id"] for t in client.get("/v1/threads", params={"q": "10063"}).json()["data"]] == ["page-1"]
    assert [t["id"] for t in client.get("/v1/threads", params={"q": "super bowl"}).json()["data"]] == ["agent-1"]
    assert client.get("/v1/threads", params={"q": "%"}).json()["total"] == 0  # LIKE's wildcards are text
    rated = client.put("/v1/threads/page-1/turns/0/feedback", json={"rating": "down", "comment": "too terse"})
    assert rated.status_code == 200 and rated.json()["feedback"]["rating"] == "down"
    assert client.put("/v1/threads/page-1/turns/5/feedback", json={"rating": "up"}).status_code == 404
    assert client.put("/v1/threads/page-1/turns/0/feedback", json={"rating": "meh"}).status_code == 400
    answer = client.get("/v1/threads/page-1").json()["messages"][1]
    assert answer["turn"] == 0 and answer["feedback"]["comment"] == "too terse"
    markdown = client.get("/v1/threads/page-1/export")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "attachment" in markdown.headers["content-disposition"]
    assert markdown.text.startswith("# What is 347 * 29?\n") and "10063" in markdown.text
    assert "feedback: down (too terse)" in markdown.text
    exported = client.get("/v1/threads/page-1/export", params={"format": "json"}).json()
    assert exported["messages"][1]["feedback"]["rating"] == "down" and exported["client"] == "web"
    client.put("/v1/threads/page-1/turns/0/feedback", json={"rating": None})
    assert client.get("/v1/threads/page-1").json()["messages"][1]["feedback"] is None


def test_a_thread_store_from_before_clients_and_feedback_opens_with_them(tmp_path: Path) -> None:
    import sqlite3

    from assistant.core.threads import ThreadStore

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE assistant_threads (id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, "
            "updated REAL NOT NULL); CREATE TABLE assistant_turns (thread_id TEXT NOT NULL, position INTEGER NOT "
            "NULL, question TEXT NOT NULL, answer TEXT NOT NULL, details TEXT NOT NULL, created REAL NOT NULL, "
            "PRIMARY KEY (thread_id, position)); INSERT INTO assistant_threads VALUES ('t', 'Old', 1, 2); "
            "INSERT INTO assistant_threads VALUES ('web-1a2b', 'Page', 1, 3); "
            "INSERT INTO assistant_turns VALUES ('t', 0, 'q?', 'a.', '{}', 1);")
    store = ThreadStore.open_sqlite(path)
    record = store.thread("t")
    assert record is not None and record.summary.client == "api" and record.turns[0].feedback is None
    # the page's own threads (its ids begin with web-) stay in its list after the upgrade
    assert [thread.id for thread in store.threads(client="web")[1]] == ["web-1a2b"]
    store.close()


def test_paging_beyond_any_integer_sqlite_holds_is_a_400(client: TestClient) -> None:
    """Found by Schemathesis: an offset of 5e31 reached SQLite and was a 500."""
    for path in ("/v1/threads", "/v1/documents"):
        assert client.get(path, params={"offset": 50358514300076833408644913561600}).status_code == 400
        assert client.get(path, params={"offset": 10, "limit": 5}).status_code == 200


def test_thread_ids_in_paths_are_validated(client: TestClient) -> None:
    for bad in ("a%20b", "x" * 129, "%2e%2e"):
        response = client.get(f"/v1/threads/{bad}")
        assert response.status_code in (400, 404), bad
        assert "error" in response.json()


def test_regenerate_replaces_the_last_turn_for_the_models_too(client: TestClient, assistant: Assistant) -> None:
    _ask(client, "Tell me a story", "web-2")
    _ask(client, "Tell me another story", "web-2")
    again = _ask(client, "Tell me another story", "web-2", regenerate=True, escalation="always")
    assert again["x_assistant"]["escalated"] is True
    record = assistant.threads.thread("web-2")
    assert record is not None and [turn.question for turn in record.turns] == ["Tell me a story",
                                                                               "Tell me another story"]
    assert record.turns[1].details["escalated"] is True
    assert [message["content"] for message in assistant.history("web-2")][::2] == ["Tell me a story",
                                                                                    "Tell me another story"]
    # The first turn regenerated: the thread starts again from nothing.
    _ask(client, "Only question", "web-3")
    _ask(client, "Only question, asked again", "web-3", regenerate=True)
    assert [message["content"] for message in assistant.history("web-3")][::2] == ["Only question, asked again"]
    refused = client.post(CHAT, json={"messages": [{"role": "user", "content": "x"}], "regenerate": True})
    assert refused.status_code == 400 and "thread id" in refused.json()["error"]["message"]


def test_the_cost_cap_keeps_the_large_model_out(tmp_path: Path) -> None:
    instance = _assistant(tmp_path)
    instance.models["small"].responder = lambda messages: "and so on " * 8  # type: ignore[attr-defined]  # loops
    try:
        with _client(instance) as client:
            unsure = _ask(client, "Tell me a story", "web-4")
            assert unsure["x_assistant"]["escalated"] is True
            capped = _ask(client, "Tell me a story", "web-5", cost_cap_usd=0)
            assert capped["x_assistant"]["escalated"] is False
            assert "cost cap" in capped["x_assistant"]["escalation_reason"]
            assert "large" not in capped["x_assistant"]["cost"]["per_model"]
            assert client.post(CHAT, json={"messages": [{"role": "user", "content": "x"}],
                                           "cost_cap_usd": -1}).status_code == 400
    finally:
        instance.close()


# ---- uploads ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "safe"), [
    ("notes.md", "notes.md"), ("../../etc/passwd.md", "passwd.md"), ("..\\..\\windows\\x.txt", "x.txt"),
    ("/abs/path/.hidden.md", "hidden.md"), ("a\x00b\x1f.md", "ab.md"), ("ok name (2).pdf", "ok name (2).pdf"),
    ("x;rm -rf ~.md", "x_rm -rf _.md"), ("..", "document"), ("", "document"), ("ＡＢＣ.md", "ABC.md"),
    ("%2e%2e%2fsecret.md", "_2e_2e_2fsecret.md")])
def test_file_names_are_sanitised(given: str, safe: str) -> None:
    assert safe_file_name(given) == safe
    assert "/" not in safe_file_name(given) and not safe_file_name(given).startswith(".")


def test_long_names_keep_their_suffix() -> None:
    assert safe_file_name("a" * 500 + ".md") == "a" * 117 + ".md"


@pytest.mark.parametrize(("name", "data", "status"), [
    ("tool.exe", b"MZ binary", 415), ("notes", b"no suffix", 415), ("fake.pdf", b"not a pdf", 415),
    ("latin.txt", "caf\xe9".encode("latin-1"), 415), ("empty.md", b"  \n", 415), ("big.md", b"x" * 5000, 413)])
def test_bad_uploads_are_refused_before_anything_is_stored(name: str, data: bytes, status: int) -> None:
    with pytest.raises(UploadRejectedError) as caught:
        check_upload(name, data, 4096)
    assert caught.value.status == status


def test_upload_index_list_and_remove(client: TestClient, assistant: Assistant) -> None:
    response = _upload(client, "../../secret/Vault notes.md", b"# Vault notes\n\nThe zorblax sleeps in the vault.")
    assert response.status_code == 202, response.text
    job = _wait(client, response.json()["data"][0])
    assert job["state"] == "done" and job["documents"] == ["uploads/Vault notes.md"] and job["chunks_done"] == 1
    pdf = _wait(client, _upload(client, "report.pdf", minimal_pdf("Glimmerfish hatchery report")).json()["data"][0])
    assert pdf["state"] == "done"
    listed = client.get("/v1/documents", params={"prefix": "uploads/"}).json()
    assert listed["total"] == 2
    assert {item["id"]: item["title"] for item in listed["data"]} == {"uploads/Vault notes.md": "Vault notes",
                                                                     "uploads/report.pdf": "report"}
    assert client.get("/v1/documents").json()["total"] == 3
    hits = assistant.retriever.search("zorblax vault", k=1)  # type: ignore[union-attr]
    assert hits[0].doc_id == "uploads/Vault notes.md"
    # The same file again changes nothing; new text under the same name replaces it.
    same = _wait(client, _upload(client, "Vault notes.md", b"# Vault notes\n\nThe zorblax sleeps in the vault.")
                 .json()["data"][0])
    assert same["state"] == "done" and "unchanged" in same["message"]
    gone = client.delete("/v1/documents/" + "uploads/Vault%20notes.md")
    assert gone.status_code == 200 and gone.json()["chunks"] == 1
    assert client.delete("/v1/documents/uploads/Vault%20notes.md").status_code == 404
    assert "uploads/Vault notes.md" not in assistant.retriever.store.documents()  # type: ignore[union-attr]
    assert client.get("/v1/documents/jobs").json()["data"][0]["id"] == same["id"]


def test_upload_refusals_are_clear(client: TestClient, assistant: Assistant) -> None:
    refused = _upload(client, "tool.exe", b"MZ")
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "unsupported_file"
    too_big = _upload(client, "big.md", b"x" * 5000)
    assert too_big.status_code == 413
    # One bad file refuses the whole request: nothing of it is queued.
    mixed = client.post("/v1/documents", files=[("file", ("a.md", b"fine")), ("file", ("b.exe", b"MZ"))])
    assert mixed.status_code == 415 and client.get("/v1/documents/jobs").json()["data"] == []
    assert client.post("/v1/documents", json={"file": "x"}).status_code == 400
    assert client.get("/v1/documents/jobs/" + "0" * 32).status_code == 404
    assert client.get("/v1/documents/jobs/../../x").status_code in (400, 404)


def test_a_file_that_fails_to_index_leaves_the_index_as_it_was(client: TestClient, assistant: Assistant) -> None:
    before = read_current(assistant.retriever.directory)  # type: ignore[union-attr]
    job = _wait(client, _upload(client, "broken.pdf", b"%PDF-1.4\nnot really a pdf at all").json()["data"][0])
    assert job["state"] == "failed" and job["message"] and "assistant-upload-" not in job["message"]
    assert read_current(assistant.retriever.directory) == before  # type: ignore[union-attr]
    assert set(assistant.retriever.store.documents()) == {"sb50.txt"}  # type: ignore[union-attr]


def test_documents_and_threads_need_the_key_when_one_is_set(assistant: Assistant) -> None:
    with _client(assistant, api_key=SecretStr("s3cret")) as keyed:
        for method, path in (("get", "/v1/threads"), ("get", "/v1/threads/x"), ("delete", "/v1/threads/x"),
                             ("get", "/v1/documents"), ("delete", "/v1/documents/sb50.txt"),
                             ("get", "/v1/documents/jobs")):
            assert getattr(keyed, method)(path).status_code == 401, path
        assert _upload(keyed, "a.md", b"text").status_code == 401
        assert _upload(keyed, "a.md", b"text", Authorization="Bearer s3cret").status_code == 202
        assert keyed.get("/v1/threads", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert keyed.get("/").status_code == 200  # the page itself loads; it asks for the key on 401


def test_an_assistant_without_an_index_says_so(tmp_path: Path) -> None:
    instance = _assistant(tmp_path, index=False)
    try:
        with _client(instance) as client:
            refused = _upload(client, "a.md", b"text")
            assert refused.status_code == 409 and "no document index" in refused.json()["error"]["message"]
            assert client.get("/v1/documents").json() == {"object": "list", "total": 0, "data": []}
    finally:
        instance.close()


def test_a_thread_from_before_transcripts_is_restored_from_the_checkpoints(client: TestClient,
                                                                          assistant: Assistant) -> None:
    _ask(client, "What is 2 + 3?", "old-1")
    assistant.threads.delete("old-1")  # as if answered by a version that kept no transcripts
    restored = client.get("/v1/threads/old-1").json()
    assert [message["content"] for message in restored["messages"]] == ["What is 2 + 3?", "5"]
    assert restored["title"] == "What is 2 + 3?" and restored["messages"][1]["x_assistant"] is None
    assert client.delete("/v1/threads/old-1").status_code == 200
    assert client.get("/v1/threads/old-1").status_code == 404


def test_a_failed_job_names_the_file_not_the_servers_temporary_folder(client: TestClient) -> None:
    job = _wait(client, _upload(client, "blank.pdf", minimal_pdf("")).json()["data"][0])
    assert job["state"] == "failed" and job["message"] == "blank.pdf has no text"


def test_health_names_the_tiers_in_memory_and_a_lazy_tier_loads_once(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from models import registry

    loads: list[str] = []

    def fake_load(settings: Settings, alias: str, **options: Any) -> FakeChatModel:
        loads.append(alias)
        return FakeChatModel(name=alias)

    monkeypatch.setattr(registry, "load_model", fake_load)
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    pool = registry.ModelPool(settings)
    large = pool.lazy("large")
    assistant = Assistant.from_parts(pool.get("small"), large, FakeEmbedder(), None, settings,
                                     tmp_path / "threads.sqlite")
    try:
        with _client(assistant) as client:
            assert client.get("/health").json()["loaded"] == ["small"]  # the large tier waits for its first call
            with concurrent.futures.ThreadPoolExecutor(4) as threads:
                list(threads.map(lambda _: large.load(), range(4)))
            assert loads == ["small", "large"] and client.get("/health").json()["loaded"] == ["small", "large"]
    finally:
        assistant.close()


# ---- live = stored ------------------------------------------------------------------------------------------------

def _streamed(client: TestClient, question: str, **extra: Any) -> tuple[str, list[dict[str, Any]]]:
    """The concatenated content deltas of a streamed turn, and its chunks."""
    import json

    with client.stream("POST", CHAT, json={"messages": [{"role": "user", "content": question}], "stream": True,
                                           **extra}) as response:
        assert response.status_code == 200
        chunks = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk.get("choices"))
    return text, chunks


def test_a_streamed_turn_shows_what_is_stored_when_its_draft_is_discarded(assistant: Assistant,
                                                                           tmp_path: Path) -> None:
    small, large = assistant.models["small"], assistant.models["large"]
    assert isinstance(small, FakeChatModel) and isinstance(large, FakeChatModel)
    with _client(assistant) as client:
        for drafts in (False, True):
            small.enqueue("Seattle Seahawks", probability=0.01)  # unsure: discarded, the large model answers
            large.enqueue("Denver Broncos")
            text, chunks = _streamed(client, "Which team won Super Bowl 50?", escalation="always",
                                     stream_drafts=drafts)
            final = next(chunk["x_assistant"] for chunk in chunks if (chunk.get("x_assistant") or {}).get("route"))
            stored = "Denver Broncos [1]"
            replaced = [chunk["x_assistant"]["text"] for chunk in chunks
                        if (chunk.get("x_assistant") or {}).get("event") == "replace"]
            if drafts:  # the page: the draft streams, then a replace event; what it shows ends as stored
                shown = ""
                for chunk in chunks:
                    event = chunk.get("x_assistant") or {}
                    if event.get("event") == "replace":
                        shown = event["text"]
                    elif chunk.get("choices"):
                        shown += chunk["choices"][0]["delta"].get("content") or ""
                assert "Seattle" in text and replaced == [""] and shown == stored and final["route"] == "FACT"
            else:  # a plain OpenAI client: content deltas add up to the stored answer, no draft
                assert text == stored and not replaced


def test_a_word_problem_streams_its_working_as_reasoning_content_then_the_answer(tmp_path: Path) -> None:
    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    large = FakeChatModel(name="large")
    assistant = Assistant(FakeChatModel(name="small"), large, FixedRouter("MATH"), None,  # type: ignore[arg-type]
                          settings, tmp_path / "threads.sqlite")
    pieces = ("She buys 3 * 4 = 13", " pens at $2 each: 12 * 2 = 25", " dollars.\nAnswer: 24")
    question = "Ann buys 3 packs of 4 pens at $2 a pen. How much money does she spend?"
    working = "She buys 3 * 4 = 12 pens at $2 each: 12 * 2 = 24 dollars.\nAnswer: 24"
    with _client(assistant) as client:
        large.enqueue(*pieces)
        text, chunks = _streamed(client, question)
        deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk.get("choices")]
        reasoning = [index for index, delta in enumerate(deltas) if delta.get("reasoning_content")]
        answer_at = next(index for index, delta in enumerate(deltas) if delta.get("content"))
        assert "".join(deltas[index]["reasoning_content"] for index in reasoning) == working
        assert text == "$24" and max(reasoning) < answer_at  # the working streams first, the answer after it
        final = next(chunk["x_assistant"] for chunk in chunks if (chunk.get("x_assistant") or {}).get("route"))
        assert final["working"] == working
        large.enqueue(*pieces)
        message = _ask(client, question)["choices"][0]["message"]
        assert (message["content"], message["reasoning_content"]) == ("$24", working)
    assistant.close()


# ---- stages --------------------------------------------------------------------------------------------------------

def test_a_client_that_asks_for_stages_is_told_what_the_turn_does_before_its_words(assistant: Assistant) -> None:
    """The page shows "searching your documents", "checking the answer", "asking the larger model" instead of a bare
    cursor; a client that does not ask gets no stage chunks."""
    small, large = assistant.models["small"], assistant.models["large"]
    assert isinstance(small, FakeChatModel) and isinstance(large, FakeChatModel)
    with _client(assistant) as client:
        small.enqueue("Seattle Seahawks", probability=0.01)
        large.enqueue("Denver Broncos")
        _, chunks = _streamed(client, "Which team won Super Bowl 50?", escalation="always", stream_stages=True)
        stages = [chunk["x_assistant"]["stage"] for chunk in chunks
                  if (chunk.get("x_assistant") or {}).get("event") == "stage"]
        assert stages == ["routing", "retrieving", "reading", "checking", "escalating"]
        labels = {chunk["x_assistant"]["label"] for chunk in chunks
                  if (chunk.get("x_assistant") or {}).get("event") == "stage"}
        assert {"searching your documents", "asking the larger model"} <= labels
        small.enqueue("Denver Broncos", probability=0.99)
        _, plain = _streamed(client, "Which team won Super Bowl 50?", escalation="never")
        assert not [chunk for chunk in plain if (chunk.get("x_assistant") or {}).get("event") == "stage"]
        _, arithmetic = _streamed(client, "What is 347 * 29?", stream_stages=True)
        assert [chunk["x_assistant"]["stage"] for chunk in arithmetic
                if (chunk.get("x_assistant") or {}).get("event") == "stage"] == ["routing", "computing", "checking"]


def test_a_threads_system_message_guides_its_chat_answers_and_is_kept_with_it(tmp_path: Path) -> None:
    from tests.routers import FixedRouter

    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"),
                                    "retrieval": {"embedder": "fake", "knowledge_base": "none"}})
    large = FakeChatModel(name="large")  # chat starts on the large model
    assistant = Assistant(FakeChatModel(name="small"), large, FixedRouter("CHAT"), None,  # type: ignore[arg-type]
                          settings, tmp_path / "threads.sqlite")
    with _client(assistant) as client:
        messages = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Say hello"}]
        response = client.post(CHAT, json={"messages": messages}, headers={"X-Thread-Id": "fr-1"})
        assert response.status_code == 200 and response.json()["x_assistant"]["route"] == "CHAT"
        assert large.calls[-1].messages[0]["content"].endswith("\n\nAnswer in French.")
        assert client.get("/v1/threads/fr-1").json()["system_prompt"] == "Answer in French."
        client.post(CHAT, json={"messages": [{"role": "user", "content": "Again"}]}, headers={"X-Thread-Id": "fr-1"})
        assert "French" not in str(large.calls[-1].messages[0]["content"])  # each request carries its own
        too_long = [{"role": "system", "content": "x" * 4001}, {"role": "user", "content": "hi"}]
        assert client.post(CHAT, json={"messages": too_long}).status_code == 400
        assert client.post(CHAT, json={"model": "small", "messages": too_long}).status_code == 200  # as it was
    assistant.close()


def test_chat_prompt_puts_the_threads_instructions_after_the_assistants() -> None:
    from assistant.core.prompts import CHAT_SYSTEM, chat_messages

    plain = chat_messages("hi", [], 4)
    guided = chat_messages("hi", [], 4, "  Answer in French. ")
    assert plain[0]["content"] == CHAT_SYSTEM and guided[0]["content"] == f"{CHAT_SYSTEM}\n\nAnswer in French."
    assert guided[1:] == plain[1:]


def test_edit_turn_answers_in_place_of_an_earlier_turn_and_drops_the_later_ones(client: TestClient) -> None:
    _ask(client, "What is 2 + 2?", "e-1")
    _ask(client, "What is 3 + 3?", "e-1")
    _ask(client, "What is 4 + 4?", "e-1")
    edited = _ask(client, "What is 5 + 5?", "e-1", edit_turn=1)
    assert edited["choices"][0]["message"]["content"] == "10"
    messages = client.get("/v1/threads/e-1").json()["messages"]
    assert [message["content"] for message in messages] == ["What is 2 + 2?", "4", "What is 5 + 5?", "10"]
    for bad in ({"edit_turn": 2}, {"edit_turn": -1}):
        response = client.post(CHAT, json={"messages": [{"role": "user", "content": "x"}], **bad},
                               headers={"X-Thread-Id": "e-1"})
        assert response.status_code == 400, bad
    assert client.post(CHAT, json={"messages": [{"role": "user", "content": "x"}], "edit_turn": 0}).status_code == 400


def test_a_chosen_model_answers_as_a_chat_and_the_turn_is_kept(client: TestClient) -> None:
    """The page's model choice (#35): ``answer_with`` has that model answer, no router, tools or escalation; the turn
    is kept in the thread like any other. A tier asked directly already is that model: the knob is refused there."""
    reply = _ask(client, "What is 2 + 2?", "chosen", answer_with="large")
    details = reply["x_assistant"]
    assert details["route"] == "CHAT" and details["route_stage"] == "forced" and not details["escalated"]
    assert list(details["cost"]["per_model"]) == ["large"]  # the model answered, not the calculator
    assert reply["choices"][0]["message"]["content"] == "What is 2 + 2?"  # the fake large model echoes
    small = _ask(client, "Who won Super Bowl 50?", "chosen", answer_with="small")["x_assistant"]
    assert small["route"] == "CHAT" and list(small["cost"]["per_model"]) == ["small"] and not small["sources"]
    thread = client.get("/v1/threads/chosen").json()
    assert [message["content"] for message in thread["messages"]][::2] == ["What is 2 + 2?", "Who won Super Bowl 50?"]
    refused = client.post(CHAT, json={"model": "small", "answer_with": "large",
                                      "messages": [{"role": "user", "content": "Hi"}]})
    assert refused.status_code == 400 and "answer_with needs model assistant" in refused.text
