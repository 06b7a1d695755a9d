"""Raw dataset files fetched from pinned registry packages, checksummed and cached outside the repository.

The BIG-bench source archive (``bigbench==1.0.0`` sdist, 358 MB) holds SQuAD v1.1 dev and the ``arithmetic`` task.
It is downloaded once with pip (``--no-binary :all:``, never installed), checked against its sha256, and only the
members this project uses are extracted (each checked against its own sha256); the archive is then deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from assistant.errors import AssistantError
from models.weights import atomic_output, sha256_file


class DatasetError(AssistantError):
    """A dataset could not be fetched, extracted or verified."""


@dataclass(frozen=True)
class ArchiveMember:
    """One file taken from a source archive: its path inside the archive and its sha256."""

    path: str
    sha256: str


BIGBENCH_REQUIREMENT = "bigbench==1.0.0"
BIGBENCH_ARCHIVE = "bigbench-1.0.0.tar.gz"
BIGBENCH_ARCHIVE_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
SQUAD_DEV = ArchiveMember(
    "bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json",
    "45089eff3cf52004b1dca6814cde5c57082fdb09872f18c79a5d944d45be523a",
)
BIGBENCH_MEMBERS = (SQUAD_DEV,)


def datasets_dir(cache_dir: Path) -> Path:
    """Where extracted dataset files live."""
    return cache_dir / "datasets"


def member_path(cache_dir: Path, member: ArchiveMember) -> Path:
    """The cached location of an extracted archive member."""
    return datasets_dir(cache_dir) / "bigbench" / Path(member.path).relative_to("bigbench-1.0.0")


@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".fetch.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def ensure_bigbench_member(cache_dir: Path, member: ArchiveMember, *, progress: bool = True) -> Path:
    """The verified path of ``member``, fetching and extracting the BIG-bench archive first if needed."""
    path = member_path(cache_dir, member)
    if _verified(path, member.sha256):
        return path
    with _lock(datasets_dir(cache_dir)):
        if _verified(path, member.sha256):
            return path
        with tempfile.TemporaryDirectory(dir=datasets_dir(cache_dir), prefix=".download-") as temp:
            archive = _download_archive(Path(temp), progress=progress)
            _extract(archive, cache_dir, progress=progress)
    if not _verified(path, member.sha256):
        raise DatasetError(f"{member.path} from {BIGBENCH_REQUIREMENT} does not match its checksum",
                           "the registry served different content; report it")
    return path


def _download_archive(target: Path, *, progress: bool) -> Path:
    if progress:
        print(f"downloading the {BIGBENCH_REQUIREMENT} source archive (358 MB) for its datasets...", file=sys.stderr)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-cache-dir",
               "--quiet", "--dest", str(target), BIGBENCH_REQUIREMENT]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    archive = target / BIGBENCH_ARCHIVE
    if completed.returncode != 0 or not archive.is_file():
        raise DatasetError(f"could not download {BIGBENCH_REQUIREMENT}: {completed.stderr.strip()[-500:]}",
                           "check access to the package index (pip config list) and retry")
    digest = sha256_file(archive, progress=progress)
    if digest != BIGBENCH_ARCHIVE_SHA256:
        raise DatasetError(
            f"{BIGBENCH_ARCHIVE} has sha256 {digest[:16]}..., expected {BIGBENCH_ARCHIVE_SHA256[:16]}...",
            "the registry served a different file; it was not used")
    return archive


def _extract(archive: Path, cache_dir: Path, *, progress: bool) -> None:
    wanted = {member.path: member for member in BIGBENCH_MEMBERS}
    with tarfile.open(archive, "r:gz") as tar, tqdm(total=len(wanted), desc="extract datasets",
                                                     disable=not progress, leave=False) as bar:
        for info in tar:
            member = wanted.get(info.name)
            if member is None or not info.isfile():
                continue
            source = tar.extractfile(info)
            assert source is not None
            destination = member_path(cache_dir, member)
            digest = hashlib.sha256()
            with atomic_output(destination) as output:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    output.write(chunk)
            if digest.hexdigest() != member.sha256:
                destination.unlink(missing_ok=True)
                raise DatasetError(f"{member.path} in {BIGBENCH_ARCHIVE} does not match its checksum")
            bar.update(1)
            del wanted[info.name]
            if not wanted:
                break
