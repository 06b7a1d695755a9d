"""Errors of the retrieval layer; each says how to fix the problem."""

from __future__ import annotations

from common.errors import AssistantError


class RetrievalError(AssistantError):
    """Documents could not be read, indexed or searched."""


class IndexMismatchError(RetrievalError):
    """The index on disk was built with a different embedder, dimension or schema than the running one."""


class IndexCorruptError(RetrievalError):
    """The index on disk is incomplete or does not match its manifest."""
