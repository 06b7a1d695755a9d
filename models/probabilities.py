"""Per-token probabilities of generated tokens, read from the logits llama.cpp sampled each token from.

The model's ``generate`` is wrapped: every time it yields a sampled token, the context still holds the logits that
token was sampled from (``llama_get_logits_ith(ctx, -1)``, a zero-copy view; the next evaluation has not run yet),
and the recorder turns them into the token's probability with one pass over the vocabulary. This needs no
``logits_all`` (which costs 2-4x memory) and no logits processor: llama-cpp-python's processor bridge copies the
whole vocabulary in and out of a record array at every step, which cost 4-11% of the small model's generation time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt


class TokenProbabilityRecorder:
    """Records the probability of each sampled token (and the prompt's length) as generation yields it."""

    def __init__(self, is_end_of_generation: Callable[[int], bool]) -> None:
        self._is_end_of_generation = is_end_of_generation
        self.prompt_tokens: int | None = None
        self._values: list[float] = []
        self._last_token = -1
        # One vocabulary-sized buffer per call, reused at every step and dropped by release().
        self._scratch: npt.NDArray[np.float32] | None = None

    def observe(self, token: int, logits: npt.NDArray[np.float32]) -> None:
        """Record ``token``, sampled from ``logits`` (the raw logits of that step, before any grammar)."""
        if self._scratch is None or len(self._scratch) != len(logits):
            self._scratch = np.empty(len(logits), dtype=np.float32)
        scratch = self._scratch
        peak = float(logits.max())
        np.subtract(logits, peak, out=scratch)
        np.exp(scratch, out=scratch)
        self._values.append(math.exp(float(logits[token]) - peak) / float(scratch.sum()))
        self._last_token = int(token)

    @property
    def steps(self) -> int:
        """Tokens sampled so far (an end-of-generation token included)."""
        return len(self._values)

    def release(self) -> None:
        """Drop the buffer now (the recorder may live on in the completion's closure)."""
        self._scratch = None

    @property
    def holds_buffers(self) -> bool:
        """Whether the vocabulary-sized buffer is still allocated (between the first step and :meth:`release`)."""
        return self._scratch is not None

    @property
    def ended_on_end_of_generation(self) -> bool:
        """Whether the last sampled token was an end-of-generation token, which is not output."""
        return self.steps > 0 and self._is_end_of_generation(self._last_token)

    def completion_tokens(self, finish_reason: str) -> int:
        """Number of generated tokens in the output (an end-of-generation token is not one)."""
        if finish_reason == "stop" and self.ended_on_end_of_generation:
            return self.steps - 1
        return self.steps

    def probabilities(self, completion_tokens: int) -> list[float]:
        """One probability per output token."""
        return self._values[:completion_tokens]
