"""The real llama-server (scripts/build_llama_server.sh, built from the llama.cpp source the pinned llama-cpp-python
vendors) on the shipped weights: supervised tier servers answer through the OpenAI-compatible backend with token
probabilities, decode concurrent requests together, come back after kill -9, and the whole graph (router, reader,
escalation decision) runs on them with the answers of the in-process engine."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.api import Assistant
from assistant.cli.common import local_tiers
from assistant.core.settings import Settings
from models.base import Completion
from models.llama_server import ServedTiers, tier_servers
from models.openai_backend import OpenAICompatibleModel
from tests.waiting import until

OXYGEN_QUESTION = "Of what group in the periodic table is oxygen a member?"  # a dev-split SQuAD article
GREETING: list[Any] = [{"role": "user", "content": "Name three primary colors."}]


@pytest.fixture(scope="module")
def tiny_server(real_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedTiers]:
    served = tier_servers(real_settings, ["tiny"], tmp_path_factory.mktemp("logs"),
                          binary=real_settings.llama.server_binary, slots=4, progress=False)
    served.servers.check_interval_s = 0.5
    served.servers.start()
    yield served
    served.servers.close()


def _client(served: ServedTiers) -> OpenAICompatibleModel:
    server = served.servers.servers["tiny"]
    return OpenAICompatibleModel(server.url, name="tiny", remote_model="tiny", parameters=served.parameters["tiny"])


def test_a_tier_answers_with_a_probability_per_token_and_the_usage_of_the_in_process_engine(
        tiny_server: ServedTiers, tiny_model: Any) -> None:
    remote = _client(tiny_server)
    try:
        completion = remote.chat(GREETING, max_tokens=24)
    finally:
        remote.close()
    local = tiny_model.chat(GREETING, max_tokens=24)
    assert completion.text.strip()
    assert len(completion.token_probabilities) == completion.usage.completion_tokens > 0
    assert all(0.0 < probability <= 1.0 for probability in completion.token_probabilities)
    # the same GGUF chat template and tokenizer on both engines
    assert completion.usage.prompt_tokens == local.usage.prompt_tokens
    assert completion.usage.flops == 2 * tiny_server.parameters["tiny"] * completion.usage.total_tokens
    assert tiny_server.weights["tiny"] and len(tiny_server.weights["tiny"]) == 64


def test_concurrent_requests_are_decoded_together_in_parallel_slots(tiny_server: ServedTiers) -> None:
    prompts = [[{"role": "user", "content": f"Count from {start} to {start + 20}, one number per line."}]
               for start in (1, 30, 60, 90)]
    completions: dict[int, Completion] = {}
    errors: list[BaseException] = []
    busy: list[int] = []
    done = threading.Event()
    metrics_url = tiny_server.servers.servers["tiny"].url.removesuffix("/v1") + "/metrics"

    def ask(number: int) -> None:
        remote = _client(tiny_server)
        try:
            completions[number] = remote.chat(prompts[number], max_tokens=64)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            remote.close()

    def watch() -> None:  # the server's own gauge of requests being decoded at once
        while not done.is_set():
            text = httpx.get(metrics_url, timeout=5).text
            busy.extend(int(float(line.split()[-1])) for line in text.splitlines()
                        if line.startswith("llamacpp:requests_processing"))
            done.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    askers = [threading.Thread(target=ask, args=(number,)) for number in range(4)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(timeout=300)
    done.set()
    watcher.join(timeout=30)
    assert not errors, errors
    assert sorted(completions) == [0, 1, 2, 3]
    for completion in completions.values():
        assert completion.text.strip() and len(completion.token_probabilities) == completion.usage.completion_tokens
    assert max(busy) >= 2, busy


def test_a_killed_server_is_started_again_and_answers(tiny_server: ServedTiers) -> None:
    server = tiny_server.servers.servers["tiny"]
    assert server.process is not None
    before, restarts = server.process.pid, server.restarts
    os.kill(before, signal.SIGKILL)
    until(lambda: server.restarts > restarts and server.healthy(), 120, "the killed llama-server never came back")
    assert server.process is not None and server.process.pid != before
    remote = _client(tiny_server)
    try:
        assert remote.chat(GREETING, max_tokens=8).text.strip()
    finally:
        remote.close()


@pytest.fixture(scope="module")
def index_settings(real_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from eval.run import squad_index_settings

    settings = squad_index_settings(real_settings, progress=False).model_copy(deep=True)
    settings.assistant.checkpoint_path = tmp_path_factory.mktemp("threads") / "threads.sqlite"
    return settings


def _ask_each(settings: Settings, questions: list[tuple[str, str]]) -> list[Any]:
    assistant = Assistant.from_settings(settings, progress=False)
    try:
        return [assistant.ask(question, escalation=escalation) for question, escalation in questions]
    finally:
        assistant.close()


def test_the_graph_on_llama_server_tiers_answers_as_in_process(index_settings: Settings, tmp_path: Path) -> None:
    questions = [(OXYGEN_QUESTION, "never"), (OXYGEN_QUESTION, "always"),
                 ("Write one sentence about the sea.", "never")]
    in_process = _ask_each(index_settings, questions)
    engine = index_settings.model_copy(deep=True)
    engine.llama.engine = "llama-server"
    engine.assistant.checkpoint_path = tmp_path / "threads.sqlite"
    with local_tiers(engine, progress=False) as served:
        assert served.models["small"].kind == "openai" and served.models["large"].kind == "openai"
        on_server = _ask_each(served, questions)
    for local, remote in zip(in_process, on_server, strict=True):
        assert remote.route == local.route and remote.escalated == local.escalated
        assert remote.text == local.text, (remote.text, local.text)
        assert [call.tier for call in remote.usage] == [call.tier for call in local.usage]
        # the decision's inputs survive the HTTP hop: the same token probabilities, so the same confidence
        assert remote.signals.get("token_p10") == pytest.approx(local.signals.get("token_p10"), abs=0.02)
        assert remote.confidence == pytest.approx(local.confidence, abs=0.02)
    assert "chalcogen" in on_server[0].text.lower() and on_server[1].escalated


@pytest.mark.slow
def test_eval_with_workers_on_llama_server_answers_every_item_as_one_worker_does(tmp_path: Path) -> None:
    """`eval run --llama-engine llama-server --workers 3` against the same with one worker (fresh item ids per run, so
    neither reads the other's cached records): every item answered by both, with the same answer where the answer
    does not hang on a near-tie (the calculator's product, the pipeline's one-word fact from the corpus). The rest is
    compared only for being answered: llama.cpp's numerics depend on how prompts were batched together and on the
    prefix a slot had cached, so under concurrency a near-tie can go the other way (on a 40-item mixed-test subset 12
    of 80 records differed, accuracy unchanged; docs/BENCHMARKS.md; one worker matched in-process on 77 of 80)."""
    from tests.integration.test_eval_real import QUESTIONS, run_with_workers

    runs = run_with_workers(tmp_path, (1, 3), "--llama-engine", "llama-server")
    texts: dict[int, dict[str, dict[str, str]]] = {}
    for workers, results in runs.items():
        assert "starting llama-server for small, large" in results["stderr"]
        assert results["meta"]["models"]["small"]["engine"] == "endpoint"
        assert results["meta"]["worker_processes"] is False  # threads: the engine batches their requests
        texts[workers] = {name: {key: record["text"] for key, record in records.items()}
                          for name, records in results["systems"].items()}
    for name in texts[1]:
        assert set(texts[3][name]) == set(texts[1][name]) == {item["id"] for item in QUESTIONS}, name
        assert all(text.strip() for text in (*texts[1][name].values(), *texts[3][name].values())), name
    routed = [texts[workers]["routed-no-escalation"] for workers in (1, 3)]
    assert [answers["mul"] for answers in routed] == ["10063", "10063"]
    assert routed[0]["capital"] == routed[1]["capital"] and routed[0]["capital"].startswith("Fredville")


@pytest.mark.slow
def test_eval_with_workers_on_one_slot_servers_without_prompt_reuse_writes_the_records_of_one_worker(
        tmp_path: Path) -> None:
    """With ``llama.server_slots = 1`` and ``llama.reuse_prompts`` off, `eval run --llama-engine llama-server
    --workers 3` writes the records of one worker, every computed field equal (texts, token probabilities,
    confidences, tokens, FLOPs): each tier's server decodes one request at a time and evaluates its prompt whole, so
    neither a batch partner nor a slot's cached prefix moves a number. (With batching, llama.cpp is not batch
    invariant: docs/BENCHMARKS.md, the sixteenth session.)"""
    from tests.integration.test_eval_real import QUESTIONS, _computed, run_with_workers

    runs = run_with_workers(tmp_path, (1, 3), "--llama-engine", "llama-server", settings={
        "ASSISTANT_LLAMA__REUSE_PROMPTS": "false", "ASSISTANT_LLAMA__SERVER_SLOTS": "1"})
    assert runs[3]["meta"]["settings"]["llama"]["server_slots"] == 1
    for name, records in runs[1]["systems"].items():
        assert set(records) == set(runs[3]["systems"][name]) == {item["id"] for item in QUESTIONS}, name
        for item_id, record in records.items():
            assert record["text"].strip(), (name, item_id)
            assert _computed(runs[3]["systems"][name][item_id]) == _computed(record), (name, item_id)
