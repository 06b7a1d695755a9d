"""One typed settings class for the whole product.

Precedence, lowest first: defaults < TOML file < environment (prefix ``ASSISTANT_``, nested with ``__``)
< CLI flags. The TOML file is ``--config PATH``, else ``$ASSISTANT_CONFIG``, else ``./assistant.toml`` if
it exists. Model tiers (``small``, ``large``, ``tiny`` and any others) are aliases, each pointing at a shipped
package model, a GGUF path or an OpenAI-compatible endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.core.errors import ConfigError
from common.sources import DatasetStore
from models.settings import LlamaSettings, ModelSpec, default_model_tiers, spec_of
from retrieval.settings import RetrievalSettings
from tools.settings import CalculatorSettings

ENV_PREFIX = "ASSISTANT_"
CONFIG_ENV_VAR = "ASSISTANT_CONFIG"
DEFAULT_CONFIG_NAME = "assistant.toml"
class AssistantSettings(BaseModel):
    """How the graph routes, answers and escalates."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.1226, ge=0, le=1, description=(
        "Escalate FACT and MATH turns below this confidence (the learned probability that the small model is right). "
        "Chosen on mixed-dev by `assistant eval calibrate --target-relative 0.97`: the least escalation reaching 97% "
        "of large-pipeline's accuracy (docs/BENCHMARKS.md)."))
    chat_threshold: float = Field(
        0.5, ge=0, le=1,
        description=("Escalate CHAT turns below this confidence (with chat_start = small): the probability that a "
                     "person finds the small model's answer acceptable, by the chat_small model fitted on "
                     "hand-labelled dev answers (an empty answer 0; without a fitted model, 1 minus the share of "
                     "repeated 4-grams)."))
    answerable_threshold: float = Field(
        0.5, ge=0, le=1,
        description=("Below this probability that the documents answer a FACT question (the learned `answerable` "
                     "model) the assistant says so: a plain refusal when the question is about the documents, a "
                     "labelled general-knowledge answer when it is about the public world (general_knowledge). "
                     "Chosen on dev: the most unanswered questions flagged with at most 3% of answered ones "
                     "(docs/BENCHMARKS.md)."))
    answerable_floor: float = Field(
        0.2, ge=0, le=1,
        description=("A FACT question whose answerability is at least this but below answerable_threshold is read "
                     "anyway; the reader's answer stands only when it found one and its confidence reaches "
                     "doubtful_confidence, else the documents do not answer it (chosen on dev runs with the reader "
                     "always answering: docs/BENCHMARKS.md, the eleventh session)."))
    doubtful_confidence: float = Field(0.5, ge=0, le=1, description="See answerable_floor.")
    general_knowledge: Literal["public", "never"] = Field(
        "public", description=("When the documents do not answer: public = answer from general knowledge, labelled, "
                               "only if the documents do not speak of what the question names (documents_coverage "
                               "below its threshold); never = always say the documents do not answer."))
    documents_coverage: float = Field(
        0.5, ge=0, le=1, description=(
            "A question is about the documents when one of its top three passages holds at least this share of its "
            "content words, or the best passage's cosine reaches documents_dense; such a question is never answered "
            "from general knowledge (chosen on docs-dev against SQuAD dev questions: docs/BENCHMARKS.md)."))
    documents_dense: float = Field(0.42, ge=-1, le=1, description="See documents_coverage.")
    general_confidence: float = Field(
        0.35, ge=0, le=1, description=(
            "A general-knowledge answer is given only when the answering model's 10th-percentile token probability "
            "reaches this; below it the model does not know (a private name, product or policy) and the assistant "
            "says the documents do not answer (docs/BENCHMARKS.md, general knowledge)."))
    route_coverage: float = Field(
        0.6, ge=0, le=1.01, description=(
            "A question the router sends to CHAT or to a word problem (not plain arithmetic) goes to the documents "
            "instead when one of its top three passages "
            "holds at least this share of its content words and the best passage's cosine reaches route_dense "
            "(1.01: never; chosen on docs-dev and routing-dev: docs/BENCHMARKS.md)."))
    route_dense: float = Field(0.4, ge=-1, le=1, description="See route_coverage.")
    route_word_problem_coverage: float = Field(
        0.5, ge=0, le=1.01, description=(
            "A question the router sends to a word problem goes to the documents instead when one of its top three "
            "passages holds at least this share of its content words, whatever the cosine: a word problem carries "
            "its own numbers, a question about a table cell ('the price of ORCL on Jan 1 2005') takes them from the "
            "documents (1.01: never; chosen on docs-dev and the dev word problems: docs/BENCHMARKS.md)."))
    escalation_model: Path | None = Field(
        None, description="JSON weights of the learned escalation models (default: the shipped, dev-trained file).")
    escalation: Literal["auto", "never", "always"] = Field("auto", description="Default escalation mode.")
    word_problems: Literal["large", "small"] = Field(
        "large", description="Who solves word problems: large (measured capability) or small.")
    chat_start: Literal["large", "small"] = Field(
        "large", description=("Who answers a CHAT turn first: large (while escalation is on and the cost cap allows; "
                              "no small draft: of hand-labelled dev answers the small model's were acceptable 9 times "
                              "in 89, the large model's 11 in 21, and no feature of a small answer tells the good "
                              "ones apart, so every small draft would fall below chat_threshold and escalate; "
                              "docs/BENCHMARKS.md, chat) or small (its answer escalates below chat_threshold)."))
    word_problem_method: Literal["working", "program"] = Field(
        "working", description=(
            "working: the model works the problem step by step and the calculator writes every result as it goes "
            "(shown as it is written; the most accurate on dev, docs/BENCHMARKS.md); program: a JSON program of "
            "named calculator steps (fewer tokens, less accurate)."))
    word_problem_samples: int = Field(3, ge=1, le=9, description="Small-model programs sampled per problem.")
    word_problem_max_tokens: int = Field(
        384, ge=32, le=4096, description=(
            "Longest working of a word problem, in tokens (chosen on dev: docs/BENCHMARKS.md, word problems)."))
    fact_k: int = Field(5, ge=1, le=50, description="Chunks retrieved for a FACT question.")
    evidence_chars: int = Field(400, ge=100, le=20000, description=(
        "Evidence sent to the model, in characters (chosen on dev: docs/BENCHMARKS.md, evidence budget)."))
    evidence_chunks: int = Field(3, ge=1, le=20, description="Chunks the evidence may come from.")
    evidence_row_floor: float = Field(0.9, ge=0, le=1, description=(
        "A table row enters the evidence only when its relevance reaches this share of the best unit's: rows that "
        "match part of the question crowded out, and came before, the row that matches all of it (0: any row; "
        "chosen on docs-dev: docs/BENCHMARKS.md)."))
    evidence_method: Literal["terms", "embedding", "both"] = Field(
        "terms", description=("How evidence sentences are scored: question words (terms), the embedder's cosine "
                              "(embedding), or both."))
    fact_max_tokens: int = Field(48, ge=4, le=1024, description="Longest FACT answer, in tokens.")
    chat_max_tokens: int = Field(256, ge=8, le=4096, description="Longest CHAT answer, in tokens.")
    history_turns: int = Field(4, ge=0, le=50, description="Earlier exchanges of the thread sent with CHAT.")
    router_neighbours: int = Field(7, ge=1, le=50, description="Exemplars voting on a route.")
    router_min_margin: float = Field(
        0.0, ge=0, le=50,
        description="Vote margin below which the small model decides (0: never; it measured worse than the vote).")
    checkpoint_path: Path | None = Field(None, description="SQLite file of conversation threads.")


class StorageSettings(BaseModel):
    """Where conversation threads live: SQLite in the cache directory (the default), or PostgreSQL."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = Field(None, description=(
        "postgresql://user:password@host:port/database: threads and the models' checkpoints in PostgreSQL, shared "
        "by every `assistant serve` pointed at it (needs `pip install '.[postgres]'`); unset: SQLite "
        "(assistant.checkpoint_path)."))
    pool_size: int = Field(8, ge=2, le=200, description="Most PostgreSQL connections one process opens.")
    connect_timeout_s: float = Field(10.0, gt=0, le=600, description="Longest to wait for PostgreSQL at start.")

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("storage.url must be a postgresql:// URL (leave it unset for SQLite)")
        return value


class ServerSettings(BaseModel):
    """The local web endpoint: where it listens and what it accepts."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to bind; anything but loopback needs an API key.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    api_key: SecretStr | None = Field(None, description="Bearer key required on /v1/* when set.")
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
                                     description="Host header allowlist (DNS-rebinding defence).")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (none by default).")
    max_body_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024, description="Largest request body.")
    max_tokens_cap: int = Field(1024, ge=16, le=8192, description="Largest max_tokens a request may ask for.")
    concurrency: int = Field(2, ge=1, le=64, description="Chat requests answered at the same time.")
    request_timeout_s: float = Field(120.0, gt=0, le=3600, description="Longest a chat request may run.")
    queue_size: int = Field(16, ge=0, le=10000, description="Chat requests allowed to wait; more get 429.")
    calculator_concurrency: int = Field(
        1, ge=1, le=64, description="Long calculations (those that need the worker process) run at the same time.")
    calculator_queue_size: int = Field(4, ge=0, le=10000,
                                       description="Long calculations allowed to wait; more get 429.")
    body_timeout_s: float = Field(10.0, gt=0, le=600, description="Longest a client may take to send its body.")
    keep_anonymous_threads: bool = Field(
        False, description="Store turns sent without a thread id (X-Thread-Id or thread_id); off: forgotten.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
                                  description="Largest document upload (POST /v1/documents); larger gets 413.")
    upload_timeout_s: float = Field(120.0, gt=0, le=3600, description="Longest a client may take to send an upload.")
    max_queued_uploads: int = Field(8, ge=1, le=1000, description=(
        "Uploads allowed to wait for indexing (staged on disk); more get 429 with the estimated wait."))
    remove_any_document: bool = Field(False, description=(
        "Let DELETE /v1/documents/{id} remove documents added by other means (assistant index add, the knowledge "
        "base); off: the API removes only what was uploaded through it (ids under uploads/)."))
    header_timeout_s: float = Field(10.0, gt=0, le=600, description=(
        "Longest a client may take to send a request's headers; a slower connection is closed."))
    preload_large: bool = Field(
        True, description=("Load the large tier before the server says it is ready, so the first word problem or "
                           "escalation does not wait for it (False: load it on first use, saving its memory until "
                           "then)."))


class McpSettings(BaseModel):
    """The MCP server (`assistant mcp`, and `/mcp` under `assistant serve`)."""

    model_config = ConfigDict(extra="forbid")

    mount: bool = Field(True, description="Serve MCP at /mcp beside the chat API (behind the same key).")
    allow_add_documents: bool = Field(False, description="Offer the add_document tool (off: clients only read).")
    max_question_chars: int = Field(8000, ge=100, le=100_000, description="Longest question or query accepted.")
    max_search_k: int = Field(20, ge=1, le=100, description="Most passages search_documents returns.")
    max_document_chars: int = Field(50_000, ge=100, le=10_000_000, description="Longest document add_document takes.")


class Settings(BaseSettings):
    """Every setting of the product. Build it with :meth:`Settings.load`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=False,
    )

    cache_dir: Path = Field(
        default_factory=lambda: platformdirs.user_cache_path("small-first-assistant"),
        description="Where model weights and indexes are cached (never inside the repository).",
    )
    auto_fetch: bool = Field(True, description="Fetch missing shipped weights on first use.")
    datasets_dir: Path | None = Field(
        None, description="Folder of local copies of the evaluation's dataset files, for offline installs "
        "(each under its cache name, same sha256; `assistant eval datasets --sources` lists them).")
    models: dict[str, ModelSpec] = Field(
        default_factory=default_model_tiers, description="Model tiers by alias."
    )
    llama: LlamaSettings = Field(default_factory=lambda: LlamaSettings())
    calculator: CalculatorSettings = Field(default_factory=lambda: CalculatorSettings())
    retrieval: RetrievalSettings = Field(default_factory=lambda: RetrievalSettings())
    assistant: AssistantSettings = Field(default_factory=lambda: AssistantSettings())
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())
    mcp: McpSettings = Field(default_factory=lambda: McpSettings())
    storage: StorageSettings = Field(default_factory=lambda: StorageSettings())

    def checkpoint_path(self) -> Path:
        """Where conversation threads are stored."""
        return self.assistant.checkpoint_path or self.cache_dir / "threads.sqlite"

    def index_dir(self) -> Path:
        """Where the retrieval index lives."""
        return self.retrieval.index_dir or self.cache_dir / "indexes" / self.retrieval.index_name

    @field_validator("models", mode="before")
    @classmethod
    def _merge_default_tiers(cls, value: Any) -> Any:
        """A tier named in config changes only the fields it names; the default tiers stay."""
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = {
            alias: spec.model_dump(exclude_none=True) for alias, spec in default_model_tiers().items()
        }
        for alias, spec in value.items():
            given = spec.model_dump(exclude_none=True) if isinstance(spec, ModelSpec) else spec
            if isinstance(given, Mapping) and alias in merged:
                merged[alias] = {**merged[alias], **given}
            else:
                merged[alias] = given
        return merged

    def dataset_store(self) -> DatasetStore:
        """The evaluation's dataset files: cached under ``cache_dir``, local copies from ``datasets_dir`` first."""
        return DatasetStore(self.cache_dir, self.datasets_dir)

    @property
    def models_dir(self) -> Path:
        """Directory holding the joined, verified GGUF files."""
        return self.cache_dir / "models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """CLI flags (init kwargs) > environment > TOML file > defaults."""
        toml_path = _active_config_file.get()
        if toml_path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    @classmethod
    def load(cls, config_file: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
        """Load settings from defaults, the TOML file, the environment and ``overrides`` (CLI flags)."""
        path = resolve_config_file(config_file)
        token = _active_config_file.set(path)
        try:
            return cls(**dict(overrides or {}))
        except ValidationError as error:
            raise ConfigError(
                f"invalid settings: {_describe_validation_error(error)}",
                "check the TOML file, the ASSISTANT_* environment variables and the command-line flags",
            ) from error
        finally:
            _active_config_file.reset(token)

    def model_spec(self, alias: str) -> ModelSpec:
        """The spec of a tier, with a helpful error for unknown aliases."""
        return spec_of(self.models, alias)


_active_config_file: ContextVar[Path | None] = ContextVar("assistant_config_file", default=None)


def resolve_config_file(config_file: Path | str | None) -> Path | None:
    """The TOML file to read: the argument, else $ASSISTANT_CONFIG, else ./assistant.toml if present."""
    explicit = config_file or os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"settings file {path} does not exist",
                f"create it, or drop --config / unset {CONFIG_ENV_VAR} to use the defaults",
            )
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def _describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)
