"""Per-token probabilities of generated tokens, collected by a llama.cpp logits processor.

llama.cpp calls the processor once per sampling step with the tokens evaluated so far and the raw logits
of the next token. The token sampled at step t is the last input id at step t+1, so its probability is
exact; the final step's token is never evaluated, so its probability is that step's maximum (exact under
greedy decoding). This needs no ``logits_all`` (which costs 2-4x memory).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt


class TokenProbabilityRecorder:
    """A logits processor that records the probability of each sampled token and the prompt length."""

    def __init__(self, is_end_of_generation: Callable[[int], bool]) -> None:
        self._is_end_of_generation = is_end_of_generation
        self.prompt_tokens: int | None = None
        self.steps = 0
        self._exact: list[float] = []
        # Two vocabulary-sized buffers per call, reused at every step and dropped by release().
        self._logits: npt.NDArray[np.float32] | None = None
        self._scratch: npt.NDArray[np.float32] | None = None
        self._previous_log_norm = 0.0
        self._last_max_probability = 1.0
        self._last_argmax = -1

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        if self._logits is None or self._scratch is None:
            self.prompt_tokens = len(input_ids)
            self._logits = np.empty(len(scores), dtype=np.float32)
            self._scratch = np.empty_like(self._logits)
        else:
            chosen = int(input_ids[-1])
            self._exact.append(math.exp(float(self._logits[chosen]) - self._previous_log_norm))
        logits, scratch = self._logits, self._scratch
        np.copyto(logits, scores)  # a contiguous copy of a strided view
        argmax = int(logits.argmax())
        peak = float(logits[argmax])
        np.subtract(logits, peak, out=scratch)
        np.exp(scratch, out=scratch)
        log_norm = peak + math.log(float(scratch.sum()))
        self._previous_log_norm = log_norm
        self._last_max_probability = math.exp(peak - log_norm)
        self._last_argmax = argmax
        self.steps += 1
        return scores

    def release(self) -> None:
        """Drop the buffers now. llama-cpp-python keeps this processor in a reference cycle that only the
        garbage collector's rare full pass frees, so without this every call left 1.2 MB behind for a while."""
        self._logits = self._scratch = None

    @property
    def holds_buffers(self) -> bool:
        """Whether the vocabulary-sized buffers are still allocated (between the first step and :meth:`release`)."""
        return self._logits is not None

    @property
    def ended_on_end_of_generation(self) -> bool:
        """Whether the last step (greedy choice) was an end-of-generation token, which is not output."""
        return self.steps > 0 and self._is_end_of_generation(self._last_argmax)

    def completion_tokens(self, finish_reason: str) -> int:
        """Number of generated tokens in the output (an end-of-generation token is not one)."""
        if finish_reason == "stop" and self.ended_on_end_of_generation:
            return self.steps - 1
        return self.steps

    def probabilities(self, completion_tokens: int) -> list[float]:
        """One probability per output token."""
        values = self._exact[:completion_tokens]
        if len(values) < completion_tokens:
            values.append(self._last_max_probability)
        return values
