from __future__ import annotations

import math

import numpy as np

from models.probabilities import TokenProbabilityRecorder

EOS = 3


def _softmax(logits: list[float]) -> list[float]:
    exps = [math.exp(x) for x in logits]
    return [x / sum(exps) for x in exps]


def _run(recorder: TokenProbabilityRecorder, steps: list[tuple[list[int], list[float]]]) -> None:
    for input_ids, logits in steps:
        recorder(np.array(input_ids, dtype=np.intc), np.array(logits, dtype=np.float32))


def test_exact_probabilities_of_sampled_tokens_and_eos() -> None:
    recorder = TokenProbabilityRecorder(lambda token: token == EOS)
    step1, step2, step3 = [2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]
    # prompt = [9, 9]; samples token 1 (not the argmax), then token 1, then EOS
    _run(recorder, [([9, 9], step1), ([9, 9, 1], step2), ([9, 9, 1, 1], step3)])
    assert recorder.prompt_tokens == 2
    assert recorder.completion_tokens("stop") == 2
    probabilities = recorder.probabilities(2)
    assert math.isclose(probabilities[0], _softmax(step1)[1], rel_tol=1e-6)
    assert math.isclose(probabilities[1], _softmax(step2)[1], rel_tol=1e-6)


def test_length_stop_uses_last_step_maximum() -> None:
    recorder = TokenProbabilityRecorder(lambda token: token == EOS)
    step1, step2 = [0.0, 1.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0]
    _run(recorder, [([5], step1), ([5, 1], step2)])
    assert recorder.completion_tokens("length") == 2
    probabilities = recorder.probabilities(2)
    assert math.isclose(probabilities[1], max(_softmax(step2)), rel_tol=1e-6)
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_scores_pass_through_unchanged() -> None:
    recorder = TokenProbabilityRecorder(lambda token: False)
    scores = np.array([1.0, 2.0], dtype=np.float32)
    assert recorder(np.array([0], dtype=np.intc), scores) is scores


def test_release_drops_the_buffers_and_keeps_the_probabilities() -> None:
    recorder = TokenProbabilityRecorder(lambda token: token == EOS)
    _run(recorder, [([9], [0.0, 2.0, 0.0, 0.0]), ([9, 1], [0.0, 0.0, 0.0, 4.0])])
    assert recorder.holds_buffers
    before = recorder.probabilities(recorder.completion_tokens("stop"))
    recorder.release()
    assert not recorder.holds_buffers
    assert recorder.probabilities(recorder.completion_tokens("stop")) == before
    assert math.isclose(before[0], _softmax([0.0, 2.0, 0.0, 0.0])[1], rel_tol=1e-6)
