"""Choosing where threads live (storage.url), without a database server: tests/integration/test_storage_postgres.py
runs the PostgreSQL side on a real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings
from assistant.core.storage import open_storage, redacted


def _settings(tmp_path: Path, **storage: object) -> Settings:
    return Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "storage": storage})


def test_without_a_url_threads_live_in_sqlite_in_the_cache(tmp_path: Path) -> None:
    storage = open_storage(_settings(tmp_path))
    assert storage.description == f"SQLite {tmp_path / 'cache' / 'threads.sqlite'}"
    storage.threads.record("t", "q", "a", {})
    assert storage.threads.thread("t") is not None
    storage.close()
    storage.close()  # idempotent


def test_an_explicit_sqlite_file_wins_over_the_url(tmp_path: Path) -> None:
    """The eval answers in a scratch file of its own whatever the product's storage is."""
    settings = _settings(tmp_path, url="postgresql://nobody@127.0.0.1:1/none")
    storage = open_storage(settings, tmp_path / "scratch.sqlite")
    assert storage.description == f"SQLite {tmp_path / 'scratch.sqlite'}"
    storage.close()


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u@h/d", "127.0.0.1:5432"])
def test_a_url_that_is_not_postgres_is_refused_at_load(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="postgresql:// URL"):
        _settings(tmp_path, url=url)


def test_the_url_is_a_secret_and_messages_show_it_without_the_password(tmp_path: Path) -> None:
    settings = _settings(tmp_path, url="postgresql://app:s3cret@db.example:5433/threads")
    assert "s3cret" not in repr(settings.storage) and "s3cret" not in str(settings.model_dump())
    assert redacted("postgresql://app:s3cret@db.example:5433/threads") == "postgresql://app@db.example:5433/threads"
    assert redacted("postgresql:///threads?host=/run/pg") == "postgresql:///run/pg/threads"
    assert "s3cret" not in redacted("postgresql://app:s3cret@[bad")
