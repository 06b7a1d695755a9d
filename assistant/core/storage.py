"""Where conversation threads live: the graph's checkpoints (what the models remember) and the transcripts (what
people browse), both in SQLite beside the cache (zero set-up, one process) or both in PostgreSQL (``storage.url``),
where every replica pointed at the same database serves the same threads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.errors import ConfigError
from assistant.core.sql import PostgresDatabase, SqlDatabase, SqliteDatabase, connect_sqlite
from assistant.core.threads import ThreadStore

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from assistant.core.settings import Settings

POSTGRES_EXTRA = "pip install '.[postgres]'  (psycopg, psycopg-pool, langgraph-checkpoint-postgres)"


@dataclass
class Storage:
    """The checkpointer and the transcript store of one assistant, and how to close both."""

    checkpointer: BaseCheckpointSaver[str]
    threads: ThreadStore
    database: SqlDatabase
    description: str
    _close: Callable[[], None]

    def close(self) -> None:
        """Close the connections (idempotent)."""
        close, self._close = self._close, _nothing
        close()


def _nothing() -> None:
    return None


def _serializer() -> JsonPlusSerializer:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    # Strict msgpack: a checkpoint loads only plain data, never a Python object named in the database (without
    # setting LANGGRAPH_STRICT_MSGPACK for the whole process).
    return JsonPlusSerializer(allowed_msgpack_modules=None)


def open_storage(settings: Settings, checkpoint_path: Path | None = None) -> Storage:
    """PostgreSQL when ``storage.url`` is set (and no ``checkpoint_path`` is given), else the SQLite file
    ``checkpoint_path`` (default: ``settings.checkpoint_path()``)."""
    url = settings.storage.url
    if checkpoint_path is None and url is not None:
        return open_postgres(url.get_secret_value(), pool_size=settings.storage.pool_size,
                             timeout=settings.storage.connect_timeout_s)
    return open_sqlite(checkpoint_path if checkpoint_path is not None else settings.checkpoint_path())


def open_sqlite(path: Path) -> Storage:
    """Checkpoints and transcripts in one SQLite file (WAL: a crash never corrupts it; a power cut may lose the
    last turn)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    connection = connect_sqlite(path)
    database = SqliteDatabase(path)
    threads = ThreadStore(database)

    def close() -> None:
        connection.close()
        threads.close()

    return Storage(SqliteSaver(connection, serde=_serializer()), threads, database, f"SQLite {path}", close)


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://(unparsable URL)"
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def open_postgres(url: str, *, pool_size: int = 8, timeout: float = 10.0) -> Storage:
    """Checkpoints (langgraph-checkpoint-postgres) and transcripts in PostgreSQL, on one connection pool; the tables
    are created or upgraded under an advisory lock, so replicas starting together do not race."""
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool, PoolTimeout
    except ImportError as error:
        raise ConfigError(f"storage.url names PostgreSQL, but its driver is not installed ({error.name})",
                          POSTGRES_EXTRA) from error
    where = redacted(url)
    # autocommit, no prepared statements, dict rows: what PostgresSaver asks of its connections
    pool: ConnectionPool[psycopg.Connection[dict[str, object]]] = ConnectionPool(
        url, min_size=1, max_size=pool_size, open=False, timeout=timeout,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "connect_timeout": timeout})
    try:
        pool.open(wait=True, timeout=timeout)
    except (PoolTimeout, psycopg.Error) as error:
        pool.close()
        raise ConfigError(f"cannot connect to PostgreSQL at {where} within {timeout:g} s",
                          "check storage.url (host, port, user, password, database) and that the server is "
                          "running, or unset storage.url to keep threads in SQLite") from error
    database = PostgresDatabase(pool, where)
    try:
        checkpointer = PostgresSaver(pool, serde=_serializer())
        with database.schema_lock():
            checkpointer.setup()
            threads = ThreadStore(database)
    except BaseException as error:
        pool.close()
        if not isinstance(error, psycopg.Error):
            raise
        raise ConfigError(f"cannot set up the thread tables in PostgreSQL at {where}: {error}",
                          "the user in storage.url needs CREATE on the database's schema") from error
    return Storage(checkpointer, threads, database, f"PostgreSQL {where}", pool.close)

