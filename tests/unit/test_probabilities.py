from __future__ import annotations

import math

import numpy as np

from models.probabilities import TokenProbabilityRecorder

EOS = 3


def _softmax(logits: list[float]) -> list[float]:
    exps = [math.exp(x) for x in logits]
    return [x / sum(exps) for x in exps]


def _run(recorder: TokenProbabilityRecorder, steps: list[tuple[int, list[float]]]) -> None:
    for token, logits in steps:
        recorder.observe(token, np.array(logits, dtype=np.float32))


def test_exact_probabilities_of_sampled_tokens_and_eos() -> None:
    recorder = TokenProbabilityRecorder(lambda token: token == EOS)
    step1, step2, step3 = [2.0, 1.0, 0.0, -1.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]
    # samples token 1 (not the argmax), then token 1, then EOS
    _run(recorder, [(1, step1), (1, step2), (EOS, step3)])
    assert recorder.completion_tokens("stop") == 2 and recorder.steps == 3
    probabilities = recorder.probabilities(2)
    assert math.isclose(probabilities[0], _softmax(step1)[1], rel_tol=1e-6)
    assert math.isclose(probabilities[1], _softmax(step2)[1], rel_tol=1e-6)


def test_a_length_stop_keeps_every_token() -> None:
    recorder = TokenProbabilityRecorder(lambda token: token == EOS)
    step1, step2 = [0.0, 1.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0]
    _run(recorder, [(1, step1), (0, step2)])
    assert recorder.completion_tokens("length") == 2
    probabilities = recorder.probabilities(2)
    assert math.isclose(probabilities[1], max(_softmax(step2)), rel_tol=1e-6)
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_large_logits_do_not_overflow() -> None:
    recorder = TokenProbabilityRecorder(lambda token: False)
    _run(recorder, [(0, [1000.0, 999.0, -1000.0])])
    assert math.isclose(recorder.probabilities(1)[0], 1 / (1 + math.exp(-1)), rel_tol=1e-6)


def test_release_drops_the_buffer_and_keeps_the_probabilities() -> None:
    recorder = TokenProbabilityRecorder(lambda token: token == EOS)
    _run(recorder, [(1, [0.0, 2.0, 0.0, 0.0]), (EOS, [0.0, 0.0, 0.0, 4.0])])
    assert recorder.holds_buffers
    before = recorder.probabilities(recorder.completion_tokens("stop"))
    recorder.release()
    assert not recorder.holds_buffers
    assert recorder.probabilities(recorder.completion_tokens("stop")) == before
    assert math.isclose(before[0], _softmax([0.0, 2.0, 0.0, 0.0])[1], rel_tol=1e-6)
