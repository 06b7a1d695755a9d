"""Thread transcripts for people: titles, times, and every answered turn with its route, sources and cost.

The graph's checkpointer keeps what the models need (the messages of a thread); this store keeps what a person
browsing their conversations needs, in two tables of the same database (SQLite, or PostgreSQL shared by replicas:
assistant/core/storage.py), so listing threads never replays checkpoints. Both are written when a turn finishes; a
stopped turn is kept as far as it was written, its details ``{"stopped": true}``; a turn that failed leaves no trace
in either.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.core.sql import SqlDatabase, SqliteDatabase

TITLE_CHARS = 80
THREAD_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
"""What a thread id may be, wherever one is accepted (the HTTP API, MCP)."""

CLIENT_PATTERN = r"^[a-z0-9-]{1,32}$"
"""What a client tag may be ("web" for the page, "mcp", "api" for the HTTP and Python APIs, an agent's own name)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS assistant_threads (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
    "created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS assistant_turns (thread_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "question TEXT NOT NULL, answer TEXT NOT NULL, details TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (thread_id, position))",
    "CREATE INDEX IF NOT EXISTS assistant_threads_updated ON assistant_threads (updated DESC)",
)
# Columns added after the first release: a store written before them gains them at open (ALTER TABLE ADD COLUMN).
_ADDED_COLUMNS = (("assistant_threads", "client", "TEXT NOT NULL DEFAULT 'api'"),
                  ("assistant_turns", "feedback", "TEXT"),
                  ("assistant_threads", "system_prompt", "TEXT NOT NULL DEFAULT ''"))

# The threads a listing keeps, for (client, client, pattern x 4): a None client or pattern keeps every thread.
# LOWER(...) LIKE LOWER(...): case-insensitive in both databases (SQLite's LIKE is, PostgreSQL's is not).
_MATCHING = (
    "FROM assistant_threads t WHERE (CAST(? AS TEXT) IS NULL OR t.client = ?) AND (CAST(? AS TEXT) IS NULL OR "
    "LOWER(t.title) LIKE LOWER(?) ESCAPE '\\' OR EXISTS (SELECT 1 FROM assistant_turns u WHERE u.thread_id = t.id "
    "AND (LOWER(u.question) LIKE LOWER(?) ESCAPE '\\' OR LOWER(u.answer) LIKE LOWER(?) ESCAPE '\\')))")
_COUNT_THREADS = "SELECT COUNT(*) " + _MATCHING
_LIST_THREADS = (
    "SELECT t.id, t.title, t.created, t.updated, (SELECT COUNT(*) FROM assistant_turns u WHERE u.thread_id = t.id), "  # noqa: S608
    "t.client, t.system_prompt " + _MATCHING + " ORDER BY t.updated DESC, t.id LIMIT ? OFFSET ?")


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its own wildcards escaped (with ``ESCAPE '\\'``)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def title_of(question: str) -> str:
    """A thread's default title: its first question on one line, cut to TITLE_CHARS characters."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class ThreadSummary:
    """One thread in a listing; ``client`` says what made it (``web``: the page; ``mcp``; ``api``; an agent)."""

    id: str
    title: str
    created: float
    updated: float
    turns: int
    client: str = "api"
    system_prompt: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns."""
        return {"id": self.id, "object": "thread", "title": self.title, "created": self.created,
                "updated": self.updated, "turns": self.turns, "client": self.client,
                "system_prompt": self.system_prompt}


@dataclass(frozen=True)
class Feedback:
    """A person's verdict on an answer: ``up`` or ``down``, and what they said."""

    rating: str
    comment: str = ""
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"rating": self.rating, "comment": self.comment, "created": self.created}


@dataclass(frozen=True)
class Turn:
    """One answered turn: the question, the answer, the answer's details (route, sources, cost...), its place in
    the thread and the feedback given on it."""

    question: str
    answer: str
    details: dict[str, Any]
    created: float
    position: int = 0
    feedback: Feedback | None = None


@dataclass(frozen=True)
class ThreadRecord:
    """A thread with its turns, oldest first."""

    summary: ThreadSummary
    turns: list[Turn] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API returns: the summary plus OpenAI-style messages carrying ``x_assistant``; both
        messages of a turn carry its ``turn`` number, the answer its ``feedback``."""
        messages: list[dict[str, Any]] = []
        for turn in self.turns:
            messages.append({"role": "user", "content": turn.question, "created": turn.created,
                             "turn": turn.position})
            messages.append({"role": "assistant", "content": turn.answer, "created": turn.created,
                             "turn": turn.position, "x_assistant": turn.details or None,
                             "feedback": turn.feedback.to_dict() if turn.feedback else None})
        return self.summary.to_dict() | {"messages": messages}

    def markdown(self) -> str:
        """The thread as a markdown document: its title, then each question and answer, with the answer's route,
        sources and feedback."""
        lines = [f"# {self.summary.title}", ""]
        for turn in self.turns:
            lines += [f"## {' '.join(turn.question.split())}", "", turn.answer.strip(), ""]
            details = turn.details or {}
            about = [f"route {details['route']}"] if details.get("route") else []
            if details.get("stopped"):
                about.append("stopped")
            if details.get("escalated"):
                about.append("answered by the larger model")
            if turn.feedback is not None:
                about.append(f"feedback: {turn.feedback.rating}" + (f" ({turn.feedback.comment})"
                                                                    if turn.feedback.comment else ""))
            if about:
                lines += [f"*{'; '.join(about)}*", ""]
            cited = [source for source in details.get("sources") or [] if source.get("cited")]
            for number, source in enumerate(cited, start=1):
                place = source.get("title") or source.get("doc_id", "")
                lines.append(f"{source.get('marker', number)}. {place}: “{source.get('quote') or ''}”")
            if cited:
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"


class ThreadStore:
    """Thread titles and turn transcripts in a SQL database (SQLite or PostgreSQL), safe to share between threads
    and, on PostgreSQL, between processes."""

    def __init__(self, database: SqlDatabase) -> None:
        self._database = database
        with database.transaction() as cursor:
            for statement in _SCHEMA:
                cursor.execute(statement)
            for table, column, definition in _ADDED_COLUMNS:
                if database.add_column(cursor, table, column, definition) and column == "client":
                    # threads the page began before threads had a client: its ids say so
                    cursor.execute("UPDATE assistant_threads SET client = 'web' WHERE id LIKE 'web-%'")

    @classmethod
    def open_sqlite(cls, path: Path) -> ThreadStore:
        """A store in the SQLite file ``path`` (created when missing)."""
        return cls(SqliteDatabase(path))

    def record(self, thread_id: str, question: str, answer: str, details: dict[str, Any], *,
               replace_from: int | None = None, client: str = "api", system_prompt: str = "") -> None:
        """Append a finished turn, or put it in place of turn ``replace_from`` and drop the turns after it (a
        regenerated or edited question); a new thread is tagged with ``client``; the thread keeps the
        ``system_prompt`` its latest turn was answered under."""
        now = time.time()
        with self._database.transaction() as cursor:
            # the upsert locks the thread's row first, so two processes recording into one thread take turns
            cursor.execute("INSERT INTO assistant_threads (id, title, created, updated, client, system_prompt) "
                           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET updated = excluded.updated, "
                           "system_prompt = excluded.system_prompt",
                           (thread_id, title_of(question), now, now, client, system_prompt))
            last = cursor.execute("SELECT MAX(position) FROM assistant_turns WHERE thread_id = ?",
                                  (thread_id,)).fetchone()[0]
            if replace_from is not None and last is not None and replace_from <= last:
                cursor.execute("DELETE FROM assistant_turns WHERE thread_id = ? AND position >= ?",
                               (thread_id, replace_from))
                position = replace_from
            else:
                position = 0 if last is None else last + 1
            cursor.execute("INSERT INTO assistant_turns (thread_id, position, question, answer, details, created) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (thread_id, position, question, answer, json.dumps(details, ensure_ascii=False), now))

    def threads(self, *, limit: int = 100, offset: int = 0, client: str | None = None,
                query: str | None = None) -> tuple[int, list[ThreadSummary]]:
        """The number of matching threads and one page of them, most recently updated first: only ``client``'s,
        and only those whose title, questions or answers hold ``query`` (case-insensitive), when given."""
        pattern = _like(query) if query else None
        parameters = (client, client, pattern, pattern, pattern, pattern)
        with self._database.transaction() as cursor:
            total = cursor.execute(_COUNT_THREADS, parameters).fetchone()[0]
            rows = cursor.execute(_LIST_THREADS, (*parameters, limit, offset)).fetchall()
        return int(total), [ThreadSummary(*row) for row in rows]

    def thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread and its turns, or None when there is no such thread."""
        with self._database.transaction() as cursor:
            row = cursor.execute(
                "SELECT id, title, created, updated, client, system_prompt FROM assistant_threads WHERE id = ?",
                (thread_id,)).fetchone()
            if row is None:
                return None
            turns = cursor.execute(
                "SELECT question, answer, details, created, position, feedback FROM assistant_turns "
                "WHERE thread_id = ? ORDER BY position", (thread_id,)).fetchall()
        summary = ThreadSummary(row[0], row[1], row[2], row[3], len(turns), row[4], row[5])
        return ThreadRecord(summary, [Turn(question, answer, json.loads(details), created, position,
                                           Feedback(**json.loads(feedback)) if feedback else None)
                                      for question, answer, details, created, position, feedback in turns])

    def give_feedback(self, thread_id: str, position: int, feedback: Feedback | None) -> bool:
        """Store (None: clear) the feedback on a thread's turn; False when there is no such turn."""
        stored = json.dumps(feedback.to_dict(), ensure_ascii=False) if feedback is not None else None
        with self._database.transaction() as cursor:
            cursor.execute("UPDATE assistant_turns SET feedback = ? WHERE thread_id = ? AND position = ?",
                           (stored, thread_id, position))
            return cursor.rowcount > 0

    def rename(self, thread_id: str, title: str) -> bool:
        """Give a thread a new title; False when there is no such thread."""
        with self._database.transaction() as cursor:
            cursor.execute("UPDATE assistant_threads SET title = ? WHERE id = ?", (title, thread_id))
            return cursor.rowcount > 0

    def delete(self, thread_id: str) -> bool:
        """Delete a thread's title and turns; False when there was no such thread."""
        with self._database.transaction() as cursor:
            cursor.execute("DELETE FROM assistant_turns WHERE thread_id = ?", (thread_id,))
            cursor.execute("DELETE FROM assistant_threads WHERE id = ?", (thread_id,))
            return cursor.rowcount > 0

    def close(self) -> None:
        """Close the database (a pooled one is closed by its owner)."""
        self._database.close()
