"""The llama.cpp backend on the real tiny and small GGUF models."""

from __future__ import annotations

import gc
import json
import math
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.core.nodes.math import PROGRAM_MAX_TOKENS
from assistant.core.program import MAX_STEPS, NAME_PATTERN, PROGRAM_SCHEMA, parse_program
from assistant.core.settings import Settings
from models import llama_cpp_backend
from models.base import ChatModel, Completion, TextDelta, collect_stream
from models.errors import ModelError, ModelFileError
from models.llama_cpp_backend import LlamaCppModel
from models.probabilities import TokenProbabilityRecorder
from models.registry import describe_tier, load_model

QUESTION: list[Any] = [{"role": "user", "content": "Name three primary colors."}]


@pytest.fixture(params=["tiny", "small"])
def model(request: pytest.FixtureRequest) -> LlamaCppModel:
    return request.getfixturevalue(f"{request.param}_model")  # type: ignore[no-any-return]


def test_is_a_chat_model(model: LlamaCppModel) -> None:
    assert isinstance(model, ChatModel)


def test_chat_returns_text_usage_and_one_probability_per_token(model: LlamaCppModel) -> None:
    completion = model.chat(QUESTION, max_tokens=40)
    assert completion.text.strip()
    assert completion.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 5 and usage.completion_tokens > 0
    assert len(completion.token_probabilities) == usage.completion_tokens
    assert all(0.0 <= p <= 1.0 for p in completion.token_probabilities)
    assert usage.wall_seconds > 0 and usage.cpu_seconds > 0
    assert usage.flops == 2 * model.parameters * usage.total_tokens


def test_token_counts_match_llama_cpp(model: LlamaCppModel) -> None:
    for max_tokens in (40, 3):
        with model.lock:
            raw = model.llama.create_chat_completion(messages=QUESTION, max_tokens=max_tokens, temperature=0.0)
        ours = model.chat(QUESTION, max_tokens=max_tokens)
        assert ours.text == raw["choices"][0]["message"]["content"]
        assert ours.finish_reason == raw["choices"][0]["finish_reason"]
        assert ours.usage.prompt_tokens == raw["usage"]["prompt_tokens"]
        assert ours.usage.completion_tokens == raw["usage"]["completion_tokens"]


def test_token_probabilities_equal_the_softmax_of_every_steps_logits(real_settings: Settings) -> None:
    """Against llama-cpp-python's own logprobs (which need ``logits_all``): the same probability for every token,
    the last one and a grammar-constrained call's included. Both models start from an empty context: the shared
    session model would reuse the KV cache of earlier tests' prompts, evaluated in other batch shapes, and on an AVX2
    build that moves these probabilities by up to 0.04 (the text stays the same)."""
    import llama_cpp

    tiny_model = load_model(real_settings, "tiny", progress=False)
    assert isinstance(tiny_model, LlamaCppModel)

    reference = llama_cpp.Llama(model_path=str(tiny_model.path), n_ctx=1024, n_threads=2, logits_all=True,
                                verbose=False)
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    for options in ({}, {"json_schema": schema}):
        ours = tiny_model.chat(QUESTION, max_tokens=12, **options)  # type: ignore[arg-type]
        grammar = (llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
                   if options else None)
        raw = reference.create_chat_completion(messages=QUESTION, max_tokens=12, temperature=0.0, logprobs=True,
                                               top_logprobs=1, grammar=grammar)
        choice = raw["choices"][0]
        assert ours.text == choice["message"]["content"]
        expected = [math.exp(item["logprob"]) for item in choice["logprobs"]["content"]]
        assert len(ours.token_probabilities) == len(expected) == ours.usage.completion_tokens
        assert ours.token_probabilities == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_greedy_probabilities_are_confident_on_an_easy_answer(small_model: LlamaCppModel) -> None:
    completion = small_model.chat([{"role": "user", "content": "What is the capital of France? One word."}],
                                  max_tokens=5)
    assert "Paris" in completion.text
    assert completion.token_probabilities[0] > 0.5


def test_json_schema_output_parses_and_validates(model: LlamaCppModel) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    completion = model.chat([{"role": "user", "content": "Describe a person called Ada, aged 36, as JSON."}],
                            max_tokens=60, json_schema=schema)
    data = json.loads(completion.text)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


def test_json_properties_come_in_the_schema_order(tiny_model: LlamaCppModel) -> None:
    # Word-problem programs rely on it: a step's name is written before its expression.
    schema = {"type": "object", "properties": {"zebra": {"type": "string"}, "apple": {"type": "string"}},
              "required": ["zebra", "apple"], "additionalProperties": False}
    completion = tiny_model.chat([{"role": "user", "content": "Two animals as JSON."}], max_tokens=40,
                                 json_schema=schema)
    assert list(json.loads(completion.text)) == ["zebra", "apple"]


def test_stream_equals_chat_at_temperature_zero(model: LlamaCppModel) -> None:
    items = list(model.stream(QUESTION, max_tokens=40))
    final = items[-1]
    assert isinstance(final, Completion)
    deltas = [item.text for item in items if isinstance(item, TextDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == final.text == model.chat(QUESTION, max_tokens=40).text


def test_closing_a_stream_releases_the_model(tiny_model: LlamaCppModel) -> None:
    stream = tiny_model.stream(QUESTION, max_tokens=200)
    next(stream)
    stream.close()
    assert not tiny_model.lock.locked()
    assert tiny_model.chat(QUESTION, max_tokens=5).text


def test_a_call_leaves_no_sampler_or_probability_buffers_for_the_garbage_collector(
        tiny_model: LlamaCppModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-cpp-python's sampler chain sits in a reference cycle; left to the GC, RSS grew under load."""
    recorders: list[TokenProbabilityRecorder] = []

    def recording(is_end_of_generation: Callable[[int], bool]) -> TokenProbabilityRecorder:
        recorders.append(TokenProbabilityRecorder(is_end_of_generation))
        return recorders[-1]

    monkeypatch.setattr(llama_cpp_backend, "TokenProbabilityRecorder", recording)
    gc.disable()
    try:
        tiny_model.chat(QUESTION, max_tokens=8, json_schema={"type": "object", "properties": {"a": {"type": "string"}}})
        stream = tiny_model.stream(QUESTION, max_tokens=200)
        next(stream)
        stream.close()
        assert tiny_model.llama._sampler is None
    finally:
        gc.enable()
    assert len(recorders) == 2
    assert not any(recorder.holds_buffers for recorder in recorders)


def test_four_threads_share_one_model(tiny_model: LlamaCppModel) -> None:
    results: list[Completion] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            if index % 2:
                results.append(collect_stream(tiny_model.stream(QUESTION, max_tokens=20)))
            else:
                results.append(tiny_model.chat(QUESTION, max_tokens=20))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == 4
    assert len({result.text for result in results}) == 1  # greedy: same answer, no cross-talk


def test_corrupted_copy_is_never_loaded(real_settings: Settings, tmp_path: Path) -> None:
    tiny = real_settings.models_dir / "smollm2-135m-instruct-q4_1.gguf"
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    copy = cache / "models" / tiny.name
    shutil.copyfile(tiny, copy)
    with copy.open("r+b") as stream:
        stream.seek(50_000_000)
        stream.write(b"\xde\xad\xbe\xef")
    settings = Settings.load(None, {"cache_dir": str(cache), "auto_fetch": False})
    with pytest.raises(ModelFileError, match="corrupted"):
        load_model(settings, "tiny", progress=False)


def test_models_list_reports_all_tiers_verified(real_settings: Settings) -> None:
    for alias in ("small", "large", "tiny"):
        info = describe_tier(real_settings, alias)
        assert info.sha256_verified, info
        assert info.parameters and info.parameters > 100_000_000


def test_prompt_longer_than_the_context_is_a_clear_error(tiny_model: LlamaCppModel) -> None:
    too_long: list[Any] = [{"role": "user", "content": "word " * (tiny_model.n_ctx + 100)}]
    with pytest.raises(ModelError, match="does not fit") as caught:
        tiny_model.chat(too_long, max_tokens=5)
    assert "n_ctx" in caught.value.hint
    assert not tiny_model.lock.locked()
    assert tiny_model.chat(QUESTION, max_tokens=3).text


def _interleaved() -> list[list[Any]]:
    fact = ("You answer a question using only the documents in the user's message. Reply with only the shortest "
            "phrase from the documents that answers the question.")
    documents = "<documents>\n[a#0] (A) Paris is the capital of France. The Eiffel Tower stands in Paris.\n</documents>"
    chat = "You are a helpful, concise assistant."

    def asked(system: str, text: str) -> list[Any]:
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    return [asked(fact, f"{documents}\nQuestion: What is the capital of France?"), asked(chat, "Say hello."),
            asked(fact, f"{documents}\nQuestion: Where does the Eiffel Tower stand?"), asked(chat, "Name a colour."),
            asked(fact, f"{documents}\nQuestion: Which city is the capital?"), asked(chat, "Say hello.")]


def test_cached_prompt_heads_give_identical_answers_and_exact_evaluated_counts(model: LlamaCppModel) -> None:
    """#19: with routes interleaving, restoring each kind of prompt's saved state changes no token of the answers
    (greedy), and the evaluated-prompt count is what llama.cpp's own counter says it evaluated."""
    import llama_cpp

    context = model.llama._ctx.ctx

    def run(cached: bool) -> list[tuple[str, int, int, int]]:
        rows = []
        model.llama.reset()
        for messages in _interleaved():
            if not cached:
                model.llama.reset()  # a fresh context: every prompt token evaluated
            llama_cpp.llama_perf_context_reset(context)
            completion = model.chat(messages, max_tokens=16)
            counted = llama_cpp.llama_perf_context(context).n_p_eval
            rows.append((completion.text, completion.usage.prompt_tokens,
                         int(completion.usage.evaluated_prompt_tokens or 0), int(counted)))
        return rows

    capacity = model.prompt_states.capacity
    try:
        model.prompt_states.capacity = 0
        plain = run(cached=False)
        model.prompt_states.capacity = 4
        model.prompt_states._entries.clear()
        cached = run(cached=True)
    finally:
        model.prompt_states.capacity = capacity
    assert [row[0] for row in cached] == [row[0] for row in plain]
    assert all(evaluated == prompt == counted for _, prompt, evaluated, counted in plain)
    assert all(evaluated == counted for _, _, evaluated, counted in cached)
    later_facts = [cached[index] for index in (2, 4)]
    assert all(evaluated < 0.3 * prompt for _, prompt, evaluated, _ in later_facts), cached
    assert sum(row[2] for row in cached) < 0.6 * sum(row[2] for row in plain)


def test_the_program_grammar_holds_a_model_asked_for_prose_to_a_program(small_model: LlamaCppModel) -> None:
    """The grammar compiled from PROGRAM_SCHEMA, on the real model: told to write prose, it still writes a program
    the evaluator parses (prose cannot come out), with names as the schema wants them."""
    completion = small_model.chat(
        [{"role": "system", "content": "Answer in one friendly paragraph of prose. Never write JSON."},
         {"role": "user", "content": "Tom has 3 boxes of 4 apples and eats 2. How many apples are left?"}],
        max_tokens=PROGRAM_MAX_TOKENS, temperature=0.0, json_schema=PROGRAM_SCHEMA)
    steps = parse_program(completion.text)
    assert 1 <= len(steps) <= MAX_STEPS, completion.text
    assert all(re.fullmatch(NAME_PATTERN.strip("^$"), name) for name, _ in steps), completion.text


def test_a_final_assistant_message_is_continued_not_answered_again(small_model: LlamaCppModel) -> None:
    question: list[Any] = [{"role": "user", "content": "Count from one to six in words, separated by commas."}]
    whole = small_model.chat(question, max_tokens=24, temperature=0.0)
    head = whole.text[: whole.text.index(",") + 1]  # "One," (or however the model starts)
    rest = small_model.chat([*question, {"role": "assistant", "content": head}], max_tokens=24, temperature=0.0)
    assert rest.text and not rest.text.lstrip().startswith(head.rstrip(","))  # it goes on from there
    assert (head + rest.text).startswith(whole.text[: len(head) + 4])  # greedy: the same reply as in one piece
    assert rest.usage.evaluated_prompt_tokens is not None
    assert rest.usage.evaluated_prompt_tokens < rest.usage.prompt_tokens  # the shared head was not evaluated again
    stopped = small_model.chat([*question, {"role": "assistant", "content": head}], max_tokens=24, stop=[","])
    assert "," not in stopped.text and stopped.text.strip()


def test_without_prompt_reuse_a_prompt_computes_the_same_whatever_came_before(real_settings: Settings) -> None:
    """#36 (identical records in any order): with ``llama.reuse_prompts`` off every prompt is evaluated whole from an
    empty context, so its answer and every token probability are the same after any history; the interleaved
    prompts asked in two orders give identical completions."""
    settings = real_settings.model_copy(update={"llama": real_settings.llama.model_copy(
        update={"reuse_prompts": False})})
    model = load_model(settings, "tiny", progress=False)
    assert isinstance(model, LlamaCppModel) and model.prompt_states.capacity == 0
    prompts = _interleaved()

    def asked(order: list[int]) -> dict[int, tuple[str, list[float], int, int]]:
        answers = {}
        for index in order:
            completion = model.chat(prompts[index], max_tokens=12)
            answers[index] = (completion.text, completion.token_probabilities, completion.usage.prompt_tokens,
                              int(completion.usage.evaluated_prompt_tokens or 0))
        return answers

    forward, backward = asked(list(range(len(prompts)))), asked(list(reversed(range(len(prompts)))))
    assert forward == backward
    assert all(prompt == evaluated for _, _, prompt, evaluated in forward.values())
