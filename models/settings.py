"""The model layer's settings: where each tier comes from and how llama.cpp runs it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from common.errors import ConfigError

SHIPPED_PREFIX = "shipped:"

ModelKind = Literal["shipped", "gguf", "openai"]


class ModelSpec(BaseModel):
    """Where one model tier comes from, and what its calls cost."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        description="'shipped:<name>' (see `assistant models list`), a path to a .gguf file, "
        "or the base URL of an OpenAI-compatible endpoint (http://host:port/v1)."
    )
    remote_model: str = Field("", description="Model name sent to an OpenAI-compatible endpoint.")
    api_key: SecretStr | None = Field(None, description="Bearer key for an OpenAI-compatible endpoint.")
    sha256: str | None = Field(
        None, description="Expected sha256 of a user GGUF file; shipped models always carry their own."
    )
    parameters: int | None = Field(
        None, ge=1, description="Parameter count for FLOPs; read from the GGUF when not given."
    )
    price_per_million_tokens: float = Field(
        0.0, ge=0.0, le=1000.0, description="Money cost in USD per 1M tokens (prompt + completion)."
    )
    n_ctx: int | None = Field(None, ge=256, le=131072, description="Context length; default llama.n_ctx.")
    request_timeout_s: float = Field(300.0, gt=0, le=3600, description="HTTP timeout for endpoints.")

    @property
    def kind(self) -> ModelKind:
        """Which backend serves this tier."""
        if self.source.startswith(SHIPPED_PREFIX):
            return "shipped"
        if self.source.startswith(("http://", "https://")):
            return "openai"
        return "gguf"

    @property
    def shipped_name(self) -> str:
        """The catalog name of a shipped model ('' for other kinds)."""
        return self.source.removeprefix(SHIPPED_PREFIX) if self.kind == "shipped" else ""


def default_model_tiers() -> dict[str, ModelSpec]:
    """The default tiers. Prices are illustrative: USD 0.10 per 1M tokens per billion parameters."""
    return {
        "small": ModelSpec(
            source="shipped:qwen2.5-coder-0.5b-instruct-q4_k_m", price_per_million_tokens=0.05
        ),
        "large": ModelSpec(
            source="shipped:qwen2.5-coder-1.5b-instruct-q4_k_m", price_per_million_tokens=0.15
        ),
        "tiny": ModelSpec(source="shipped:smollm2-135m-instruct-q4_1", price_per_million_tokens=0.015),
    }


class LlamaSettings(BaseModel):
    """How llama.cpp runs local GGUF models."""

    model_config = ConfigDict(extra="forbid")

    n_threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=256, description="CPU threads."
    )
    n_ctx: int = Field(4096, ge=256, le=131072, description="Context length in tokens.")
    n_batch: int = Field(512, ge=8, le=8192, description="Prompt-processing batch size.")
    seed: int = Field(0, ge=0, description="Sampling seed (temperature 0 is greedy anyway).")
    prompt_cache_entries: int = Field(
        4, ge=0, le=64, description=("Evaluated prompt states each local model keeps (one per kind of prompt) and "
                                     "restores instead of re-evaluating a shared head; 0 turns the cache off."))
    reuse_prompts: bool = Field(True, description=(
        "Reuse what a local model's context already evaluated (the previous prompt's shared prefix, the saved prompt "
        "states). false evaluates every prompt from an empty context: slower, but a prompt's token probabilities no "
        "longer depend on what was asked before, so an evaluation in any order or any number of worker processes "
        "writes identical records. On llama-server tiers it turns the slots' prompt cache off; identical records "
        "there also take server_slots = 1 (llama.cpp's numbers depend on which prompts share a batch)."))
    engine: Literal["in-process", "llama-server"] = Field("in-process", description=(
        "How local tiers run: inside the process through llama-cpp-python (one generation at a time per model), or "
        "each on llama.cpp's own server (continuous batching over server_slots; build it once with "
        "scripts/build_llama_server.sh), started and supervised by `assistant serve`, `eval run` and `models serve`."))
    server_binary: Path | None = Field(None, description=(
        "The llama-server to run (default: the one scripts/build_llama_server.sh built for the installed "
        "llama-cpp-python, under ~/.cache/small-first-assistant-builds)."))
    server_slots: int = Field(4, ge=1, le=64, description=(
        "Sequences each llama-server decodes together (continuous batching). Batched sequences round differently "
        "from one alone, so a near-tie between two tokens can go either way; 1 decodes one at a time."))


def spec_of(models: Mapping[str, ModelSpec], alias: str) -> ModelSpec:
    """The spec of tier ``alias``, with a helpful error for unknown aliases."""
    try:
        return models[alias]
    except KeyError:
        raise ConfigError(
            f"no model tier named {alias!r}",
            f"use one of {', '.join(sorted(models))}, or add [models.{alias}] to the settings file",
        ) from None


class ModelsConfig(Protocol):
    """What the model layer reads from the product's settings (``assistant.core.settings.Settings`` provides it)."""

    models: dict[str, ModelSpec]
    llama: LlamaSettings
    auto_fetch: bool

    @property
    def models_dir(self) -> Path:
        """Directory holding the joined, verified GGUF files."""
        ...

    def model_spec(self, alias: str) -> ModelSpec:
        """The spec of tier ``alias``."""
        ...
