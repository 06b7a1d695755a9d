"""The chunk store: FAISS vectors + chunk metadata, saved as crash-safe generations, never with pickle.

On disk (``<index dir>``)::

    CURRENT              "gen-000007": the generation readers load (replaced atomically, last step of a save)
    gen-000007/
        manifest.json    schema, FAISS version, embedder id, dimension, metric, counts, sha256 of every file
        chunks.jsonl     one JSON object per chunk (ids, text, title, source, offsets), in vector order
        vectors.npy      float32 [chunks x dimension], normalised (numpy format, allow_pickle=False)
        index.faiss      the FAISS index (IDMap2 over flat inner product, or HNSW)

A save writes a new generation directory, fsyncs every file and the directory, then replaces ``CURRENT``
(temp file, fsync, rename, fsync of the parent). A crash at any point leaves ``CURRENT`` naming a complete
generation. Loading verifies every file's sha256 and that the FAISS index, the vectors and the metadata have the
same number of rows.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from common.files import atomic_output, atomic_write_bytes, file_lock, fsync_dir, sha256_file
from retrieval.errors import IndexCorruptError, IndexMismatchError, RetrievalError

SCHEMA_VERSION = 1
METRIC = "inner_product"
IndexType = Literal["flat", "hnsw"]
_GENERATION = re.compile(r"^gen-(\d{6})$")
_FILES = ("chunks.jsonl", "vectors.npy", "index.faiss")


@dataclass(frozen=True)
class ChunkRecord:
    """One indexed chunk. ``chunk_id`` is ``<doc_id>#<position>``; ``vector_id`` is its FAISS id; ``section`` is the
    headings above it in a structured document ("Install › Docker"), empty for plain text."""

    vector_id: int
    chunk_id: str
    doc_id: str
    position: int
    text: str
    title: str
    source: str
    doc_hash: str
    start: int
    end: int
    section: str = ""


class ChunkStore:
    """Vectors and metadata of every chunk, kept in step: ``index.ntotal == len(chunks)`` after every operation."""

    def __init__(self, embedder_id: str, dimension: int, index_type: IndexType = "flat") -> None:
        self.embedder_id = embedder_id
        self.dimension = dimension
        self.index_type: IndexType = index_type
        self.chunks: dict[int, ChunkRecord] = {}
        self._vectors: dict[int, np.ndarray[Any, np.dtype[np.float32]]] = {}
        self.next_id = 0
        self.generation = 0
        self._index: Any = self._new_index()
        self._stale = False

    # ---- contents ------------------------------------------------------------------------------------

    def _new_index(self) -> Any:
        if self.index_type == "hnsw":
            return faiss.IndexIDMap2(faiss.IndexHNSWFlat(self.dimension, 32, faiss.METRIC_INNER_PRODUCT))
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def ntotal(self) -> int:
        """Vectors in the FAISS index (equal to ``len(self)``)."""
        self._refresh()
        return int(self._index.ntotal)

    def documents(self) -> dict[str, list[ChunkRecord]]:
        """Chunks grouped by document id, in position order."""
        grouped: dict[str, list[ChunkRecord]] = {}
        for record in sorted(self.chunks.values(), key=lambda r: (r.doc_id, r.position)):
            grouped.setdefault(record.doc_id, []).append(record)
        return grouped

    def add(self, records: list[ChunkRecord], vectors: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        """Add chunks whose ``vector_id`` came from :meth:`allocate_ids`, with one vector each."""
        if len(records) != len(vectors) or (len(vectors) and vectors.shape[1] != self.dimension):
            raise RetrievalError(f"{len(records)} chunks but {vectors.shape} vectors (dimension {self.dimension})")
        if not records:
            return
        ids = np.asarray([record.vector_id for record in records], dtype=np.int64)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        self._refresh()
        self._index.add_with_ids(matrix, ids)
        for record, vector in zip(records, matrix, strict=True):
            self.chunks[record.vector_id] = record
            self._vectors[record.vector_id] = vector

    def copy(self) -> ChunkStore:
        """An independent copy (writers change a copy, so searches never see a half-made change)."""
        twin = ChunkStore(self.embedder_id, self.dimension, self.index_type)
        twin.chunks = dict(self.chunks)
        twin._vectors = dict(self._vectors)
        twin.next_id = self.next_id
        twin.generation = self.generation
        twin._index = faiss.clone_index(self._index)
        twin._stale = self._stale
        return twin

    def allocate_ids(self, count: int) -> list[int]:
        """Fresh FAISS ids; ids are never reused, so a stale id can never point at another chunk."""
        start = self.next_id
        self.next_id += count
        return list(range(start, start + count))

    def remove(self, vector_ids: Iterable[int]) -> int:
        """Remove chunks by FAISS id; returns how many were removed."""
        ids = [vector_id for vector_id in vector_ids if vector_id in self.chunks]
        if not ids:
            return 0
        for vector_id in ids:
            del self.chunks[vector_id]
            del self._vectors[vector_id]
        if self.index_type == "flat":
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))
        else:
            self._stale = True  # HNSW cannot delete: rebuilt from the stored vectors before the next use
        return len(ids)

    def _refresh(self) -> None:
        if self._stale:
            self._index = self._new_index()
            if self._vectors:
                ids = np.fromiter(self._vectors, dtype=np.int64)
                self._index.add_with_ids(np.stack([self._vectors[i] for i in ids]), ids)
            self._stale = False

    def search(self, query: np.ndarray[Any, np.dtype[np.float32]], k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunks to one normalised query vector: (FAISS id, inner product), best first."""
        self._refresh()
        if not len(self.chunks):
            return []
        scores, ids = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                                         min(k, len(self.chunks)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors_in_order(self) -> tuple[list[ChunkRecord], np.ndarray[Any, np.dtype[np.float32]]]:
        """Every chunk and its vector, by FAISS id."""
        records = [self.chunks[i] for i in sorted(self.chunks)]
        if not records:
            return records, np.zeros((0, self.dimension), dtype=np.float32)
        return records, np.stack([self._vectors[record.vector_id] for record in records])

    # ---- persistence ---------------------------------------------------------------------------------

    def manifest(self, files: dict[str, str]) -> dict[str, Any]:
        """What a generation on disk holds and how it was built."""
        return {
            "schema_version": SCHEMA_VERSION,
            "faiss_version": faiss.__version__,
            "embedder": self.embedder_id,
            "dimension": self.dimension,
            "metric": METRIC,
            "normalized": True,
            "index_type": self.index_type,
            "chunk_count": len(self.chunks),
            "document_count": len({record.doc_id for record in self.chunks.values()}),
            "next_id": self.next_id,
            "generation": self.generation,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": files,
        }

    def save(self, directory: Path, *, fail_after: str | None = None) -> Path:
        """Write a new generation and make it current; returns its directory.

        ``fail_after`` (tests only) raises right after the named step, to prove every crash point is safe.
        """
        directory.mkdir(parents=True, exist_ok=True)
        with file_lock(directory / ".lock"):
            current = read_current(directory)
            self.generation = max(self.generation, generation_number(current) if current else 0) + 1
            target = directory / f"gen-{self.generation:06d}"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            records, vectors = self.vectors_in_order()
            self._refresh()
            with atomic_output(target / "chunks.jsonl") as stream:
                for record in records:
                    stream.write(json.dumps(asdict(record), ensure_ascii=False).encode() + b"\n")
            _step(fail_after, "chunks")
            with atomic_output(target / "vectors.npy") as stream:
                np.save(stream, vectors, allow_pickle=False)
            _step(fail_after, "vectors")
            with atomic_output(target / "index.faiss") as stream:
                stream.write(faiss.serialize_index(self._index).tobytes())
            _step(fail_after, "index")
            files = {name: sha256_file(target / name) for name in _FILES}
            atomic_write_bytes(target / "manifest.json", json.dumps(self.manifest(files), indent=2).encode())
            fsync_dir(target)
            _step(fail_after, "manifest")
            atomic_write_bytes(directory / "CURRENT", f"{target.name}\n".encode())
            _step(fail_after, "current")
            _remove_old_generations(directory, keep={target.name, current or ""})
        return target

    @classmethod
    def load(cls, directory: Path, embedder_id: str, dimension: int) -> ChunkStore:
        """The current generation in ``directory``, verified; refuses an index built for another embedder."""
        current = read_current(directory)
        if current is None:
            raise IndexCorruptError(f"no index in {directory} (no CURRENT file)", "build one: assistant index add ...")
        target = directory / current
        manifest = _read_manifest(target)
        _check_compatible(manifest, directory, embedder_id, dimension)
        for name in _FILES:
            path = target / name
            if not path.is_file() or sha256_file(path) != manifest["files"].get(name):
                raise IndexCorruptError(f"{path} is missing or does not match the manifest",
                                        f"rebuild the index: remove {directory} and add the documents again")
        lines = (target / "chunks.jsonl").read_text("utf-8").splitlines()
        records = [ChunkRecord(**json.loads(line)) for line in lines]
        vectors = np.load(target / "vectors.npy", allow_pickle=False)
        index = faiss.deserialize_index(np.frombuffer((target / "index.faiss").read_bytes(), dtype=np.uint8))
        if not (len(records) == len(vectors) == index.ntotal == manifest["chunk_count"]):
            raise IndexCorruptError(
                f"{target}: {len(records)} chunks, {len(vectors)} vectors, {index.ntotal} FAISS entries, manifest "
                f"{manifest['chunk_count']}", f"rebuild the index: remove {directory} and add the documents again")
        store = cls(embedder_id, dimension, manifest["index_type"])
        store._index = index
        store.next_id = int(manifest["next_id"])
        store.generation = int(manifest["generation"])
        for record, vector in zip(records, vectors, strict=True):
            store.chunks[record.vector_id] = record
            store._vectors[record.vector_id] = vector
        return store


def read_current(directory: Path) -> str | None:
    """The name of the current generation, or None when there is no index."""
    try:
        name = (directory / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    if not _GENERATION.match(name):
        raise IndexCorruptError(f"{directory}/CURRENT holds {name[:40]!r}, not a generation name",
                                f"rebuild the index: remove {directory} and add the documents again")
    return name


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of the current generation (None when there is no index)."""
    current = read_current(directory)
    return None if current is None else _read_manifest(directory / current)


def _read_manifest(target: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((target / "manifest.json").read_text())
    except (OSError, ValueError) as error:
        raise IndexCorruptError(f"{target}/manifest.json cannot be read: {error}",
                                "rebuild the index: remove the index directory and add the documents again") from None
    return manifest


def _check_compatible(manifest: dict[str, Any], directory: Path, embedder_id: str, dimension: int) -> None:
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"the index in {directory} has schema version {manifest.get('schema_version')}; this version reads "
            f"{SCHEMA_VERSION}", "rebuild it: assistant index rebuild")
    if manifest.get("embedder") != embedder_id or manifest.get("dimension") != dimension:
        raise IndexMismatchError(
            f"the index in {directory} was built with embedder {manifest.get('embedder')} "
            f"({manifest.get('dimension')} dimensions), but the running embedder is {embedder_id} ({dimension})",
            "re-embed it with the running embedder: `assistant index rebuild`, or select the embedder it was "
            "built with (--retrieval-embedder NAME)")
    if manifest.get("metric") != METRIC:
        raise IndexMismatchError(f"the index in {directory} uses metric {manifest.get('metric')}, not {METRIC}",
                                 "rebuild it: assistant index rebuild")


def generation_number(name: str) -> int:
    """The number of a generation directory name (``gen-000012`` -> 12; 0 for anything else)."""
    match = _GENERATION.match(name)
    return int(match.group(1)) if match else 0


def _remove_old_generations(directory: Path, keep: set[str]) -> None:
    for path in directory.iterdir():
        if path.is_dir() and _GENERATION.match(path.name) and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _step(fail_after: str | None, step: str) -> None:
    if fail_after == step:
        raise RetrievalError(f"injected failure after {step}")
