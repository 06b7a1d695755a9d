"""Threads in a real PostgreSQL (Debian's server, a throw-away cluster): the transcript store behaves as on SQLite,
two processes' worth of connections share one thread, and an assistant started against the same database continues
a thread another one began (what replicas need)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from assistant.core.assistant import Assistant
from assistant.core.errors import ConfigError
from assistant.core.settings import Settings
from assistant.core.storage import open_postgres
from assistant.core.threads import Feedback, ThreadStore
from models.fake import FakeChatModel
from tests.postgres import fresh_database, postgres_server
from tests.routers import FixedRouter


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def database_url(server: str, request: pytest.FixtureRequest) -> str:
    return fresh_database(server, "t_" + request.node.name.lower()[:50])


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "storage": {"url": url},
                                "retrieval": {"embedder": "fake", "knowledge_base": "none"}})


def test_the_transcript_store_on_postgres_lists_searches_replaces_and_deletes(database_url: str) -> None:
    storage = open_postgres(database_url)
    store = storage.threads
    store.record("a", "First question about Ünïcode", "one", {"route": "CHAT"}, client="web")
    store.record("b", "other", "100% done_ok", {})
    store.record("a", "second", "two", {})
    store.record("a", "second", "two again", {"route": "FACT"}, replace_from=1, system_prompt="be brief")
    total, listed = store.threads()
    assert total == 2 and [item.id for item in listed] == ["a", "b"]
    record = store.thread("a")
    assert record is not None and record.summary.title == "First question about Ünïcode"
    assert [(turn.question, turn.answer) for turn in record.turns] == [("First question about Ünïcode", "one"),
                                                                       ("second", "two again")]
    assert record.turns[1].details == {"route": "FACT"} and record.summary.system_prompt == "be brief"
    # case-insensitive search, wildcards taken literally, the client filter, paging
    assert [item.id for item in store.threads(query="FIRST QUESTION")[1]] == ["a"]
    assert [item.id for item in store.threads(query="100%")[1]] == ["b"]
    assert store.threads(query="0% d")[0] == 1 and store.threads(query="e_o")[0] == 1
    assert store.threads(query="%")[0] == 1 and store.threads(query="_")[0] == 1
    assert [item.id for item in store.threads(client="web")[1]] == ["a"]
    assert [item.id for item in store.threads(limit=1, offset=1)[1]] == ["b"]
    assert store.give_feedback("a", 1, Feedback("down", "wrong", 5.0))
    assert not store.give_feedback("a", 7, Feedback("up"))
    record = store.thread("a")
    assert record is not None and record.turns[1].feedback == Feedback("down", "wrong", 5.0)
    assert store.rename("a", "Renamed") and not store.rename("nope", "x")
    assert store.delete("a") and not store.delete("a") and store.thread("a") is None
    assert store.threads()[0] == 1
    storage.close()
    storage.close()  # idempotent


def test_two_processes_recording_into_one_thread_take_turns(database_url: str) -> None:
    """Two pools (as two replicas would hold) append 40 turns to one thread at once: no position is lost or
    doubled (the thread row's lock serialises them)."""
    first, second = open_postgres(database_url), open_postgres(database_url)
    errors: list[BaseException] = []

    def append(store: ThreadStore, name: str) -> None:
        try:
            for number in range(20):
                store.record("shared", f"{name} {number}", "answer", {})
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=append, args=(storage.threads, name))
               for storage, name in ((first, "one"), (second, "two"))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    record = second.threads.thread("shared")
    assert record is not None and [turn.position for turn in record.turns] == list(range(40))
    assert sorted(turn.question for turn in record.turns) == sorted(
        [f"one {number}" for number in range(20)] + [f"two {number}" for number in range(20)])
    first.close()
    second.close()


def test_replicas_starting_together_create_the_tables_once(database_url: str) -> None:
    """Four processes' worth of start-ups on an empty database at once: the advisory lock keeps CREATE TABLE from
    racing (without it PostgreSQL reports duplicate keys in pg_type)."""
    opened, errors = [], []

    def start() -> None:
        try:
            opened.append(open_postgres(database_url))
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=start) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == [] and len(opened) == 4
    opened[0].threads.record("t", "q", "a", {})
    assert all(storage.threads.thread("t") is not None for storage in opened)
    for storage in opened:
        storage.close()


def test_a_thread_begun_on_one_assistant_continues_on_another(tmp_path: Path, database_url: str) -> None:
    """Two assistants (as two `assistant serve` replicas) on one database: the second answers the thread's next
    turn with the first one's turns in the models' memory and in the transcript, and forgetting it on one forgets it
    on both."""
    settings = _settings(tmp_path, database_url)
    large = FakeChatModel(name="large")  # chat starts on the large model
    first = Assistant(FakeChatModel(name="small"), large, FixedRouter("CHAT"), None, settings)  # type: ignore[arg-type]
    second = Assistant(FakeChatModel(name="small"), large, FixedRouter("CHAT"), None, settings)  # type: ignore[arg-type]
    assert first.storage.description.startswith("PostgreSQL postgresql://postgres@127.0.0.1:")
    large.enqueue("Nice to meet you, Ada.")
    first.ask("My name is Ada.", thread_id="replicated")
    large.enqueue("Your name is Ada.")
    second.ask("What is my name?", thread_id="replicated")
    prompt = [message["content"] for message in large.calls[-1].messages]
    assert "My name is Ada." in prompt and "Nice to meet you, Ada." in prompt
    assert [message["content"] for message in first.history("replicated")] == [
        "My name is Ada.", "Nice to meet you, Ada.", "What is my name?", "Your name is Ada."]
    record = first.thread("replicated")
    assert record is not None and [turn.answer for turn in record.turns] == ["Nice to meet you, Ada.",
                                                                             "Your name is Ada."]
    # a regenerated answer on the first replica replaces the second replica's turn in memory and transcript
    large.enqueue("You are Ada.")
    first.ask("What is my name?", thread_id="replicated", replace_last=True)
    assert [message["content"] for message in second.history("replicated")][-1] == "You are Ada."
    second.forget("replicated")
    assert first.thread("replicated") is None and first.history("replicated") == []
    first.close()
    second.close()


def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path: Path, server: str) -> None:
    dead = server.replace("postgres@", "postgres:s3cret@").rsplit(":", 1)[0] + ":1/postgres"
    with pytest.raises(ConfigError) as caught:
        open_postgres(dead, timeout=2)
    message = str(caught.value)
    assert "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/postgres" in message
    assert "s3cret" not in message and "storage.url" in message


def test_a_table_from_an_older_release_gains_its_new_columns(database_url: str) -> None:
    """As on SQLite: a column added after the first release is added at open when the table lacks it."""
    open_postgres(database_url).close()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE assistant_threads DROP COLUMN system_prompt")
    storage = open_postgres(database_url)
    storage.threads.record("t", "q", "a", {}, system_prompt="p")
    record = storage.threads.thread("t")
    assert record is not None and record.summary.system_prompt == "p"
    storage.close()
