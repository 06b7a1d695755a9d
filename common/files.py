"""Durable file helpers: streamed sha256, atomic writes (temp file, fsync, rename) and advisory locks."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tqdm import tqdm

_CHUNK = 8 * 1024 * 1024


def sha256_file(path: Path, *, progress: bool = False) -> str:
    """The hex sha256 of a file, streamed in chunks."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as stream, tqdm(total=size, unit="B", unit_scale=True, disable=not progress,
                                         desc=f"verify {path.name}", leave=False) as bar:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new content, never a mix."""
    with atomic_output(path) as stream:
        stream.write(data)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream whose content replaces ``path`` atomically (temp file, fsync, rename) when it closes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the `with handle` below
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False)
    temp = Path(handle.name)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LockBusyError(Exception):
    """Another process holds the lock and the caller asked not to wait."""


@contextlib.contextmanager
def file_lock(lock_path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (created if needed) for the ``with`` block.

    With ``wait=False`` a lock held by another process raises LockBusyError at once instead of waiting.
    The lock is released by the kernel when the process dies, so a crash never leaves it stuck.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusyError(str(lock_path)) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
