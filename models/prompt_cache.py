"""Cached prompt heads: evaluated KV states of recent prompts, restored instead of re-evaluating a shared head.

llama.cpp keeps one context per model and llama-cpp-python reuses the longest prefix the new prompt shares with
what the context holds. Prompts of different kinds (the factual prompt, the chat prompt, a program prompt) each have
a constant head, but when kinds interleave the context holds the other kind and the whole head is evaluated again.
:class:`PromptStates` keeps the last evaluated state of each kind of prompt (the sequence's KV cells, about 12 KB a
token for the 0.5B model: a state is saved or restored in about a millisecond); before a call, the state sharing the
longest prefix with the new prompt is restored when it shares more than the context does.

llama-cpp-python's own ``LlamaRAMCache`` does the same job but copies the whole logits buffer (n_batch x vocabulary,
311 MB for these models) on every save; this one copies the sequence state only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_GAIN_TOKENS = 8
"""A saved state is restored only when it shares at least this many more tokens with the prompt than the context."""
SAME_KIND_TOKENS = 16
"""Prompts sharing at least this many leading tokens are of one kind: a new state replaces the old one."""


def common_prefix(first: Sequence[int] | np.ndarray, second: Sequence[int] | np.ndarray) -> int:
    """How many leading tokens two sequences share."""
    left, right = np.asarray(first), np.asarray(second)
    size = min(len(left), len(right))
    differ = np.flatnonzero(left[:size] != right[:size])
    return int(differ[0]) if len(differ) else size


def evaluated_prompt_tokens(context: Sequence[int] | np.ndarray, prompt: Sequence[int] | np.ndarray,
                            context_is_live: bool) -> int:
    """Prompt tokens llama-cpp-python evaluates for ``prompt`` when its context holds ``context``.

    It keeps the longest shared prefix and evaluates the rest; a prompt the context holds entirely is re-evaluated
    from its last token (to refresh the logits), except when the context is exactly the prompt and its logits come
    from a live decode rather than a restored state (``context_is_live``): then nothing is evaluated.
    (llama-cpp-python 0.3.36, ``Llama.generate``.)
    """
    shared = common_prefix(context, prompt)
    if shared == len(prompt) and len(context) == len(prompt) and context_is_live:
        return 0
    reused = shared - 1 if shared == len(prompt) else shared
    return len(prompt) - max(reused, 0)


@dataclass
class SavedState:
    """The tokens a context held and its sequence state (llama_state_seq_get_data) for them."""

    tokens: np.ndarray
    state: bytes


class PromptStates:
    """At most ``capacity`` saved states, one per kind of prompt, least recently used evicted first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: list[SavedState] = []

    def __len__(self) -> int:
        return len(self._entries)

    def best(self, prompt: Sequence[int] | np.ndarray, shared_now: int) -> SavedState | None:
        """The saved state worth restoring for ``prompt`` (sharing at least MIN_GAIN_TOKENS more than the context's
        ``shared_now``), or None."""
        scored = [(common_prefix(entry.tokens, prompt), index) for index, entry in enumerate(self._entries)]
        if not scored:
            return None
        shared, index = max(scored)
        if shared < shared_now + MIN_GAIN_TOKENS:
            return None
        entry = self._entries.pop(index)
        self._entries.append(entry)  # most recently used last
        return entry

    def store(self, tokens: Sequence[int] | np.ndarray, state: bytes) -> None:
        """Keep ``state`` for ``tokens``, replacing the state of the same kind of prompt (or the oldest one)."""
        if self.capacity <= 0:
            return
        saved = SavedState(np.asarray(tokens, dtype=np.int32).copy(), state)
        same = [index for index, entry in enumerate(self._entries)
                if common_prefix(entry.tokens, saved.tokens) >= min(SAME_KIND_TOKENS, len(saved.tokens))]
        for index in reversed(same):
            del self._entries[index]
        self._entries.append(saved)
        while len(self._entries) > self.capacity:
            self._entries.pop(0)
