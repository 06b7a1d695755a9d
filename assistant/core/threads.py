"""Thread transcripts for people: titles, times, and every answered turn with its route, sources and cost.

The graph's checkpointer keeps what the models need (the messages of a thread); this store keeps what a person
browsing their conversations needs, in two tables of the same SQLite file, so listing threads never replays
checkpoints. Both are written when a turn finishes; a turn that was stopped or failed leaves no trace in either.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TITLE_CHARS = 80
THREAD_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
"""What a thread id may be, wherever one is accepted (the HTTP API, MCP)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assistant_threads (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS assistant_turns (
    thread_id TEXT NOT NULL, position INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    details TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (thread_id, position));
CREATE INDEX IF NOT EXISTS assistant_threads_updated ON assistant_threads (updated DESC);
"""


def title_of(question: str) -> str:
    """A thread's default title: its first question on one line, cut to TITLE_CHARS characters."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class ThreadSummary:
    """One thread in a listing."""

    id: str
    title: str
    created: float
    updated: float
    turns: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {"id": self.id, "object": "thread", "title": self.title, "created": self.created,
                "updated": self.updated, "turns": self.turns}


@dataclass(frozen=True)
class Turn:
    """One answered turn: the question, the answer, and the answer's details (route, sources, cost...)."""

    question: str
    answer: str
    details: dict[str, Any]
    created: float


@dataclass(frozen=True)
class ThreadRecord:
    """A thread with its turns, oldest first."""

    summary: ThreadSummary
    turns: list[Turn] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns: the summary plus OpenAI-style messages carrying ``x_assistant``."""
        messages: list[dict[str, Any]] = []
        for turn in self.turns:
            messages.append({"role": "user", "content": turn.question, "created": turn.created})
            messages.append({"role": "assistant", "content": turn.answer, "created": turn.created,
                             "x_assistant": turn.details or None})
        return self.summary.to_dict() | {"messages": messages}


class ThreadStore:
    """Thread titles and turn transcripts in SQLite (WAL), safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)

    def record(self, thread_id: str, question: str, answer: str, details: dict[str, Any], *,
               replace_last: bool = False) -> None:
        """Append a finished turn (or put it in place of the thread's last one, when it was regenerated)."""
        now = time.time()
        with self._lock, self._transaction() as cursor:
            cursor.execute("INSERT INTO assistant_threads (id, title, created, updated) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT(id) DO UPDATE SET updated = excluded.updated",
                           (thread_id, title_of(question), now, now))
            last = cursor.execute("SELECT MAX(position) FROM assistant_turns WHERE thread_id = ?",
                                  (thread_id,)).fetchone()[0]
            if replace_last and last is not None:
                cursor.execute("DELETE FROM assistant_turns WHERE thread_id = ? AND position = ?", (thread_id, last))
                position = last
            else:
                position = 0 if last is None else last + 1
            cursor.execute("INSERT INTO assistant_turns VALUES (?, ?, ?, ?, ?, ?)",
                           (thread_id, position, question, answer, json.dumps(details, ensure_ascii=False), now))

    def threads(self, *, limit: int = 100, offset: int = 0) -> tuple[int, list[ThreadSummary]]:
        """The total number of threads and one page of them, most recently updated first."""
        with self._lock:
            total = self._connection.execute("SELECT COUNT(*) FROM assistant_threads").fetchone()[0]
            rows = self._connection.execute(
                "SELECT t.id, t.title, t.created, t.updated, "
                "(SELECT COUNT(*) FROM assistant_turns u WHERE u.thread_id = t.id) "
                "FROM assistant_threads t ORDER BY t.updated DESC, t.id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return int(total), [ThreadSummary(*row) for row in rows]

    def thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread and its turns, or None when there is no such thread."""
        with self._lock:
            row = self._connection.execute("SELECT id, title, created, updated FROM assistant_threads WHERE id = ?",
                                           (thread_id,)).fetchone()
            if row is None:
                return None
            turns = self._connection.execute(
                "SELECT question, answer, details, created FROM assistant_turns WHERE thread_id = ? "
                "ORDER BY position", (thread_id,)).fetchall()
        summary = ThreadSummary(row[0], row[1], row[2], row[3], len(turns))
        return ThreadRecord(summary, [Turn(question, answer, json.loads(details), created)
                                      for question, answer, details, created in turns])

    def rename(self, thread_id: str, title: str) -> bool:
        """Give a thread a new title; False when there is no such thread."""
        with self._lock, self._transaction() as cursor:
            cursor.execute("UPDATE assistant_threads SET title = ? WHERE id = ?", (title, thread_id))
            return cursor.rowcount > 0

    def delete(self, thread_id: str) -> bool:
        """Delete a thread's title and turns; False when there was no such thread."""
        with self._lock, self._transaction() as cursor:
            cursor.execute("DELETE FROM assistant_turns WHERE thread_id = ?", (thread_id,))
            cursor.execute("DELETE FROM assistant_threads WHERE id = ?", (thread_id,))
            return cursor.rowcount > 0

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back when the block raises."""
        cursor = self._connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
