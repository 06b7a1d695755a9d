"""The SQL databases the stores run on, behind one small interface: SQLite (one file, zero set-up) and PostgreSQL
(shared by replicas). Statements are written once, with ``?`` placeholders and SQL both databases accept."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from assistant.core.errors import ConfigError

if TYPE_CHECKING:
    from psycopg import Cursor
    from psycopg_pool import ConnectionPool

SCHEMA_LOCK = 7_205_913_554_110_361_321
"""PostgreSQL advisory-lock key a process holds while it creates or upgrades tables."""
SCHEMA_LOCK_WAIT_S = 300.0


class SqlCursor(Protocol):
    """What a store does with a cursor: execute, fetch, count the rows a change touched."""

    @property
    def rowcount(self) -> int:
        """Rows the last change touched."""
        ...

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> SqlCursor:
        """Run one statement with ``?`` placeholders."""
        ...

    def fetchone(self) -> Any:
        """The next row (a tuple) or None."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows (tuples)."""
        ...


class SqlDatabase(Protocol):
    """A database a store keeps its tables in."""

    def transaction(self) -> contextlib.AbstractContextManager[SqlCursor]:
        """A cursor in one transaction: committed when the block ends, rolled back when it raises."""
        ...

    def add_column(self, cursor: SqlCursor, table: str, column: str, definition: str) -> bool:
        """Add ``column`` to ``table`` unless it is there already; True when it was added."""
        ...

    def close(self) -> None:
        """Let go of the connections."""
        ...


def connect_sqlite(path: Path, isolation_level: Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"] | None = "DEFERRED",
                   ) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` (created with its folder), shareable between threads, in WAL mode
    with synchronous=NORMAL: a crash never corrupts the file; a power cut may lose the last transaction.
    ``isolation_level`` as sqlite3 takes it (DEFERRED: what its default "" means; None: the caller issues BEGIN)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=isolation_level)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


class SqliteDatabase:
    """One SQLite file (WAL: a crash never corrupts it), its statements serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._connection = connect_sqlite(path, isolation_level=None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlCursor]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back when the block raises."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def add_column(self, cursor: SqlCursor, table: str, column: str, definition: str) -> bool:
        """ALTER TABLE ADD COLUMN when PRAGMA table_info lacks the column."""
        present = {row[1] for row in cursor.execute(f"PRAGMA table_info({table})").fetchall()}
        if column in present:
            return False
        cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        return True

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()


class _PostgresCursor:
    """A psycopg cursor taking ``?`` placeholders (a statement with parameters holds no other ``?`` or ``%``)."""

    def __init__(self, cursor: Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> SqlCursor:
        self._cursor.execute(sql.replace("?", "%s"), tuple(parameters) or None)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class PostgresDatabase:
    """PostgreSQL through a connection pool (shared with the LangGraph checkpointer). Whoever creates a store on it
    holds :meth:`schema_lock` meanwhile, so replicas starting together do not race."""

    def __init__(self, pool: ConnectionPool[Any], where: str = "PostgreSQL") -> None:
        self._pool = pool
        self.where = where

    @contextlib.contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Hold the schema advisory lock (on a connection of its own) while tables are created or upgraded. It is
        asked for again every 0.1 s, not waited for inside a statement: a waiting statement would deadlock with the
        holder's CREATE INDEX CONCURRENTLY, which waits for every open transaction to end."""
        from psycopg.rows import tuple_row

        with self._pool.connection() as connection:
            cursor = connection.cursor(row_factory=tuple_row)
            deadline = time.monotonic() + SCHEMA_LOCK_WAIT_S
            while not cursor.execute("SELECT pg_try_advisory_lock(%s)", (SCHEMA_LOCK,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise ConfigError(f"another process has been setting up tables in {self.where} for "
                                      f"{SCHEMA_LOCK_WAIT_S:g} s", "look for a stuck `assistant serve` on it")
                time.sleep(0.1)
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqlCursor]:
        """BEGIN ... COMMIT on a pooled connection, rolled back when the block raises."""
        from psycopg.rows import tuple_row

        with self._pool.connection() as connection, connection.transaction():
            yield _PostgresCursor(connection.cursor(row_factory=tuple_row))

    def add_column(self, cursor: SqlCursor, table: str, column: str, definition: str) -> bool:
        """ALTER TABLE ADD COLUMN when information_schema lacks the column."""
        present = cursor.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                                 "AND table_name = ? AND column_name = ?", (table, column)).fetchone()
        if present is not None:
            return False
        cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        return True

    def close(self) -> None:
        """Nothing: the pool belongs to whoever opened it (assistant/core/storage.py)."""
