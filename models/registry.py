"""Turn a tier alias from the settings into a ready ``ChatModel``; describe every tier for `models list`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.base import ChatModel, Completion, Message, StreamItem
from models.catalog import shipped_model
from models.errors import ModelError, ModelFileError
from models.gguf import read_gguf_info
from models.settings import ModelsConfig, ModelSpec
from models.weights import ensure_shipped, read_stamp, shipped_path, verify_file


@dataclass
class TierInfo:
    """What `assistant models list` shows for one tier."""

    alias: str
    kind: str
    source: str
    path: str
    size: int | None
    parameters: int | None
    sha256_verified: bool
    price_per_million_tokens: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def gguf_path(spec: ModelSpec, settings: ModelsConfig, *, fetch: bool | None = None, progress: bool = True) -> Path:
    """The verified local GGUF file behind a shipped or path tier, fetching shipped weights if allowed."""
    if spec.kind == "shipped":
        model = shipped_model(spec.shipped_name)
        return ensure_shipped(model, settings.models_dir, fetch=settings.auto_fetch if fetch is None else fetch,
                              progress=progress)
    if spec.kind == "gguf":
        path = Path(spec.source).expanduser()
        verify_file(path, spec.sha256, progress=progress)
        return path
    raise ModelError(f"{spec.source} is an endpoint, not a GGUF file", "use a shipped: or .gguf source")


def load_model(settings: ModelsConfig, alias: str, *, progress: bool = True) -> ChatModel:
    """Build the model of tier ``alias``: a ``LlamaCppModel`` or an ``OpenAICompatibleModel``."""
    spec = settings.model_spec(alias)
    if spec.kind == "openai":
        from models.openai_backend import OpenAICompatibleModel

        return OpenAICompatibleModel(
            spec.source,
            name=alias,
            remote_model=spec.remote_model,
            api_key=spec.api_key.get_secret_value() if spec.api_key else None,
            parameters=spec.parameters or 0,
            price_per_million_tokens=spec.price_per_million_tokens,
            timeout_s=spec.request_timeout_s,
        )
    from models.llama_cpp_backend import LlamaCppModel

    path = gguf_path(spec, settings, progress=progress)
    info = read_gguf_info(path)
    if not info.has_chat_template:
        raise ModelFileError(f"{path} has no chat template (a base model, not an instruct model?)",
                             "use an instruct/chat GGUF for this tier")
    return LlamaCppModel(
        path,
        name=alias,
        parameters=spec.parameters or info.parameters,
        price_per_million_tokens=spec.price_per_million_tokens,
        n_ctx=spec.n_ctx or settings.llama.n_ctx,
        n_threads=settings.llama.n_threads,
        n_batch=settings.llama.n_batch,
        seed=settings.llama.seed,
        prompt_cache_entries=settings.llama.prompt_cache_entries,
        reuse_prompts=settings.llama.reuse_prompts,
    )


class ModelPool:
    """Loads each tier once, on first use, and shares it between callers (thread-safe)."""

    def __init__(self, settings: ModelsConfig) -> None:
        self.settings = settings
        self._models: dict[str, ChatModel] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one per tier: two tiers may load at the same time

    def get(self, alias: str) -> ChatModel:
        """The model of tier ``alias``, loading it if needed (once, however many threads ask)."""
        with self._lock:
            if alias in self._models:
                return self._models[alias]
            loading = self._loading.setdefault(alias, threading.Lock())
        with loading:
            with self._lock:
                if alias in self._models:
                    return self._models[alias]
            model = load_model(self.settings, alias)
            with self._lock:
                self._models[alias] = model
            return model

    def put(self, alias: str, model: ChatModel) -> None:
        """Use ``model`` for tier ``alias`` (tests and embedding applications)."""
        with self._lock:
            self._models[alias] = model

    def loaded(self, alias: str) -> bool:
        """Whether tier ``alias`` is in memory."""
        with self._lock:
            return alias in self._models

    def lazy(self, alias: str) -> LazyModel:
        """Tier ``alias`` as a model that loads on its first call (the large tier costs nothing until used)."""
        return LazyModel(self, alias)


class LazyModel:
    """A tier of a :class:`ModelPool` loaded on first use; name and price are known before loading."""

    def __init__(self, pool: ModelPool, alias: str) -> None:
        self._pool = pool
        self.name = alias
        self.price_per_million_tokens = float(pool.settings.model_spec(alias).price_per_million_tokens)
        self.parameters = 0  # known once loaded; usage records carry the real count

    @property
    def loaded(self) -> bool:
        """Whether the tier is in memory yet."""
        return self._pool.loaded(self.name)

    def load(self) -> None:
        """Load the tier now instead of on its first call."""
        self._pool.get(self.name)

    def chat(self, messages: Sequence[Message], **options: Any) -> Completion:
        """Load the tier if needed, then answer (see ``ChatModel.chat``)."""
        return self._pool.get(self.name).chat(messages, **options)

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[StreamItem]:
        """Load the tier if needed, then stream (see ``ChatModel.stream``)."""
        return self._pool.get(self.name).stream(messages, **options)


def describe_tier(settings: ModelsConfig, alias: str, *, verify: bool = False) -> TierInfo:
    """Describe a tier without loading it; ``verify`` re-hashes local files."""
    spec = settings.model_spec(alias)
    info = TierInfo(alias=alias, kind=spec.kind, source=spec.source, path="", size=None,
                    parameters=spec.parameters, sha256_verified=False,
                    price_per_million_tokens=spec.price_per_million_tokens, detail="")
    if spec.kind == "openai":
        info.path = spec.source
        info.detail = f"remote model {spec.remote_model or alias!r}; not checked"
        return info
    expected_sha: str | None
    try:
        if spec.kind == "shipped":
            model = shipped_model(spec.shipped_name)
            path, expected_sha, expected_size = shipped_path(model, settings.models_dir), model.sha256, model.size
        else:
            path, expected_sha, expected_size = Path(spec.source).expanduser(), spec.sha256, None
        info.path = str(path)
        if not path.is_file():
            info.detail = "missing: run `assistant models fetch`" if spec.kind == "shipped" else "missing file"
            return info
        info.size = path.stat().st_size
        stamp = read_stamp(path)
        if verify or stamp is None:
            verify_file(path, expected_sha, expected_size, force=verify)
        info.sha256_verified = expected_sha is not None
        if info.parameters is None:
            info.parameters = read_gguf_info(path).parameters
        info.detail = "ok" if expected_sha else "ok (no sha256 pinned for this file)"
    except ModelError as error:
        info.detail = error.message
    return info
