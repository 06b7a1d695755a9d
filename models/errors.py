"""Errors of the model layer; each says how to fix the problem."""

from __future__ import annotations

from common.errors import AssistantError


class ModelError(AssistantError):
    """A model could not be loaded or called."""


class ModelFileError(ModelError):
    """A model file is missing, truncated, corrupted or not a GGUF file."""


class ModelFetchError(ModelError):
    """Shipped weights could not be downloaded from the package registry."""


class ContextOverflowError(ModelError):
    """The prompt does not fit the model's context window."""


class EndpointError(ModelError):
    """An OpenAI-compatible endpoint is unreachable or answered with an error."""
