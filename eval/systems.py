"""The systems an evaluation compares, each answering one item at a time into a JSON-able record.

Run systems call models: ``large-only`` and ``small-only`` (one model answers alone: no retrieval, no tools),
``routed-no-escalation`` (this product with escalation off) and ``large-pipeline`` (the same graph, router,
retrieval and calculator with the large model in every role). ``routed`` and ``oracle`` are composed from the
last two without running anything (see eval/sweep.py): the large model's escalation turn sends the same prompt
as large-pipeline's answer step, so its answer and cost are already known.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assistant.core.answer import Answer
from assistant.core.assistant import Assistant
from assistant.core.errors import choice_hint
from assistant.core.escalation import load_escalation_model
from assistant.core.prompts import (
    CHAT_SYSTEM,
    FACT_SYSTEM,
    GENERAL_KNOWLEDGE_LABEL,
    GENERAL_SYSTEM,
    PROGRAM_SYSTEM,
    WORKING_SYSTEM,
)
from assistant.core.routing import CascadeRouter, Router
from assistant.core.settings import Settings
from eval.datasets import EvalItem
from eval.errors import EvalError
from eval.names import ALL_SYSTEMS, COMPOSED_SYSTEMS, RUN_SYSTEMS
from models.base import ChatModel, Message

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The source files that decide a system's records. Their hash is part of the cache key, so a record computed by
# older code is never reused (no hand-bumped version). The pipeline's is the answering core, never its interfaces.
DIRECT_CODE = ("eval/systems.py", "models", "assistant/core/prompts.py")  # the baselines' word-problem prompt
PIPELINE_CODE = (*DIRECT_CODE, "assistant/core", "retrieval", "tools")
# What turns a suite's documents into stored chunks and vectors: an evaluation index built by older code is rebuilt.
INDEX_CODE = ("retrieval/chunking.py", "retrieval/converters.py", "retrieval/documents.py", "retrieval/embedders.py",
              "retrieval/markdown.py", "retrieval/retriever.py")


def code_files(parts: tuple[str, ...], root: Path | None = None) -> list[Path]:
    """The Python files under ``parts`` (files or package directories), sorted."""
    root = root or PROJECT_ROOT
    files: set[Path] = set()
    for part in parts:
        path = root / part
        files.update(path.rglob("*.py") if path.is_dir() else [path])
    return sorted(files)


def code_hash(parts: tuple[str, ...], root: Path | None = None) -> str:
    """sha256 over the relative paths and bytes of :func:`code_files` (16 hex digits)."""
    root = root or PROJECT_ROOT
    digest = hashlib.sha256()
    for path in code_files(parts, root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]

# The closed-book baselines get the best prompt for each kind of question, the kind taken from the dataset: this
# favours them over a real monolithic assistant, which would not know it. One prompt for every kind was measured
# first (2026-11-24, 500 items): the large model then answered 95 of 100 word problems with a bare number and got
# 5% of them right, against 33% (4 of 12) when asked to work step by step.
DIRECT_PROMPTS: dict[str, str] = {
    "fact": "Answer the question with just the answer, in as few words as possible.",
    "document": "Answer the question with just the answer, in as few words as possible.",
    "arithmetic": "Compute the result. Reply with just the number.",
    "word_problem": WORKING_SYSTEM,  # the routed system's working uses the same prompt; the calculator writes results
    "chat": "You are a helpful assistant.",
}
DIRECT_MAX_TOKENS = 256


class System(Protocol):
    """One way of answering the suite's questions."""

    name: str

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes this system's answers (models, settings, prompts): the cache key's material."""
        ...

    def answer(self, item: EvalItem) -> dict[str, Any]:
        """Answer one item: text, route, confidence, escalation, usage per model call, wall and CPU seconds."""
        ...

    def reusable(self, item: EvalItem, record: dict[str, Any]) -> bool:
        """Whether a cached record still holds for ``item`` (the fingerprint matched already)."""
        ...


def model_fingerprint(settings: Settings, alias: str) -> dict[str, Any]:
    """What identifies a tier's weights: the shipped file's sha256, a GGUF's sha256 (or size), the weights an
    endpoint is known to serve (a tier on llama-server), or else the endpoint."""
    spec = settings.model_spec(alias)
    if spec.kind == "shipped":
        from models.catalog import shipped_model

        return {"alias": alias, "sha256": shipped_model(spec.shipped_name).sha256}
    if spec.kind == "gguf":
        path = Path(spec.source).expanduser()
        size = path.stat().st_size if path.exists() else None
        return {"alias": alias, "sha256": spec.sha256, "path": str(path), "size": size}
    if spec.sha256:  # a local tier served by llama-server: the weights identify it, not the port it got
        return {"alias": alias, "sha256": spec.sha256, "engine": "endpoint"}
    return {"alias": alias, "endpoint": spec.source, "model": spec.remote_model}


def fingerprint_key(material: dict[str, Any]) -> str:
    """A short stable hash of a fingerprint."""
    canonical = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _usage_record(step: str, tier: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"step": step, "tier": tier, **usage}


class DirectSystem:
    """One model answers alone, closed-book, with the prompt for the item's kind: ``large-only`` (the monolithic
    baseline) and ``small-only``."""

    def __init__(self, name: str, tier: str, model: ChatModel, settings: Settings,
                 max_tokens: int = DIRECT_MAX_TOKENS) -> None:
        self.name = name
        self.tier = tier
        self.model = model
        self.settings = settings
        self.max_tokens = max_tokens

    def fingerprint(self) -> dict[str, Any]:
        """Model weights, prompt, token budget and sampling settings."""
        return {"system": self.name, "code": code_hash(DIRECT_CODE),
                "model": model_fingerprint(self.settings, self.tier),
                "prompts": DIRECT_PROMPTS, "max_tokens": self.max_tokens, "llama": self.settings.llama.model_dump()}

    def reusable(self, item: EvalItem, record: dict[str, Any]) -> bool:
        """Always: a closed-book answer depends only on the fingerprint and the question."""
        return True

    def answer(self, item: EvalItem) -> dict[str, Any]:
        """The model's reply to the question with its kind's prompt, greedy."""
        messages: list[Message] = [{"role": "system", "content": DIRECT_PROMPTS[item.kind]},
                                   {"role": "user", "content": item.question}]
        started, cpu_started = time.perf_counter(), time.process_time()
        completion = self.model.chat(messages, max_tokens=self.max_tokens, temperature=0.0)
        return {"text": completion.text.strip(), "route": "", "route_stage": "", "confidence": None,
                "escalated": False, "decisions": [], "escalation_reason": "",
                "usage": [_usage_record("answer", self.tier, completion.usage.to_dict())], "sources": [],
                "wall_seconds": round(time.perf_counter() - started, 4),
                "cpu_seconds": round(time.process_time() - cpu_started, 4)}


def answer_record(answer: Answer, wall_seconds: float, cpu_seconds: float,
                  tiers: tuple[str, str] = ("small", "large")) -> dict[str, Any]:
    """The cached record of one graph turn; ``tiers`` names the models in the graph's small and large roles (the
    router's model is always the small tier). ``decisions`` hold the escalation policy's inputs at each point of the
    turn, which eval/sweep.py replays to compose the routed system."""
    roles = {"small": tiers[0], "large": tiers[1]}
    usage = [call.to_dict() if call.step == "route" else call.to_dict() | {"tier": roles.get(call.tier, "")}
             for call in answer.usage]
    view = answer.view()
    return {"text": view.text, "route": view.route, "route_stage": view.route_stage,
            "confidence": view.confidence, "escalated": view.escalated,
            "decisions": [decision.to_dict() for decision in view.decisions],
            "escalation_reason": view.escalation_reason, "signals": answer.signals, "features": answer.features,
            "working": view.working,
            "answerable": view.answerable, "general_knowledge": view.general_knowledge,
            "not_in_documents": view.not_in_documents, "usage": usage,
            "sources": [{"chunk_id": source.chunk_id, "doc_id": source.doc_id, "score": source.score,
                         "used": source.used} for source in view.sources],
            "wall_seconds": round(wall_seconds, 4), "cpu_seconds": round(cpu_seconds, 4)}


class PipelineSystem:
    """The product's graph answering with escalation off: ``routed-no-escalation`` and ``large-pipeline``.

    The fingerprint holds the hash of the graph's code, the router's included: any change recomputes every record.
    """

    def __init__(self, name: str, tiers: tuple[str, str], assistant: Assistant | Callable[[], Assistant],
                 settings: Settings, router: Callable[[], Router] | None = None) -> None:
        self.name = name
        self.tiers = tiers
        self._assistant = assistant
        self.settings = settings
        self._router = router

    @property
    def assistant(self) -> Assistant:
        """The assistant, built on first use."""
        if not isinstance(self._assistant, Assistant):
            self._assistant = self._assistant()
        return self._assistant

    def fingerprint(self) -> dict[str, Any]:
        """Models, retrieval and assistant settings except the escalation knobs (the sweep sets those)."""
        assistant = self.settings.assistant.model_dump(mode="json",
                                                       exclude={"threshold", "escalation", "checkpoint_path",
                                                                "chat_threshold"})
        retrieval = self.settings.retrieval.model_dump(mode="json")
        return {"system": self.name, "code": code_hash(PIPELINE_CODE),
                "models": [model_fingerprint(self.settings, tier) for tier in self.tiers],
                "assistant": assistant, "retrieval": retrieval, "index": str(self.settings.index_dir()),
                "prompts": [FACT_SYSTEM, CHAT_SYSTEM, PROGRAM_SYSTEM, GENERAL_SYSTEM, GENERAL_KNOWLEDGE_LABEL],
                "escalation_model": load_escalation_model(self.settings.assistant.escalation_model).digest,
                "llama": self.settings.llama.model_dump()}

    def reusable(self, item: EvalItem, record: dict[str, Any]) -> bool:
        """True while the router still gives the cached turn's route and stage."""
        router = self._router() if self._router is not None else self.assistant.router
        decision = router.route(item.question)
        return (decision.route, decision.stage) == (record.get("route"), record.get("route_stage"))

    def answer(self, item: EvalItem) -> dict[str, Any]:
        """One turn on a fresh thread, escalation off."""
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = self.assistant.ask(item.question, escalation="never")
        return answer_record(answer, time.perf_counter() - started, time.process_time() - cpu_started, self.tiers)


@dataclass
class SystemFactory:
    """Builds the run systems over shared parts: one model pool, one retriever, one router (identical routes)."""

    settings: Settings
    checkpoint_path: Path
    progress: bool = True

    def __post_init__(self) -> None:
        from models.registry import ModelPool

        self._pool = ModelPool(self.settings)  # loads each tier on first use
        self._router: Router | None = None
        self._retriever: Any = None

    def _shared(self) -> tuple[Router, Any]:
        if self._router is None:
            from assistant.core.knowledge_base import open_retriever

            self._retriever = open_retriever(self.settings, progress=self.progress)
            assistant_settings = self.settings.assistant
            small = self._pool.get("small") if assistant_settings.router_min_margin > 0 else None
            self._router = CascadeRouter(self._retriever.embedder, small,
                                         neighbours=assistant_settings.router_neighbours,
                                         min_margin=assistant_settings.router_min_margin)
        return self._router, self._retriever

    def _assistant(self, small: str, large: str) -> Assistant:
        router, retriever = self._shared()
        return Assistant(self._pool.get(small), self._pool.get(large), router, retriever, self.settings,
                         self.checkpoint_path)

    def build(self, name: str) -> System:
        """The run system called ``name``."""
        if name == "large-only":
            return DirectSystem(name, "large", self._pool.lazy("large"), self.settings)
        if name == "small-only":
            return DirectSystem(name, "small", self._pool.lazy("small"), self.settings)
        if name in ("routed-no-escalation", "large-pipeline"):
            tiers = ("small", "large") if name == "routed-no-escalation" else ("large", "large")
            return PipelineSystem(name, tiers, lambda: self._assistant(*tiers), self.settings,
                                  router=lambda: self._shared()[0])
        raise KeyError(name)


@dataclass(frozen=True)
class WorkerSystem:
    """Builds run system ``name`` inside an evaluation worker process, with that process's own models (llama.cpp on
    ``threads`` threads), index and thread store: a picklable recipe for ``run_system``'s ``worker_build``.

    The records go under the parent's fingerprint, whose thread count differs: the count changes llama.cpp's speed,
    not its numbers (the same token probabilities with 1 and 2 threads, docs/BENCHMARKS.md). The embedder keeps
    torch's own thread count, as one process answering one item at a time has it: its sums in another thread count
    round differently (a retrieval margin moved in the eighth decimal), and it runs for milliseconds per item. What a
    process's context held from its earlier items can move token probabilities slightly, as any other order of the
    items can, unless ``llama.reuse_prompts`` is off: then the records equal one at a time's."""

    settings: Settings
    name: str
    scratch: Path
    threads: int

    def __call__(self) -> System:
        """The system, in this process."""
        llama = self.settings.llama.model_copy(update={"n_threads": self.threads})
        settings = self.settings.model_copy(update={"llama": llama})
        factory = SystemFactory(settings, self.scratch / f"threads-{os.getpid()}.sqlite", progress=False)
        return factory.build(self.name)


def in_process_tiers(settings: Settings) -> bool:
    """Whether a tier runs in this process through llama-cpp-python (then workers need processes of their own)."""
    return any(settings.model_spec(tier).kind != "openai" for tier in ("small", "large"))


def expand_systems(names: list[str]) -> tuple[list[str], list[str]]:
    """(systems to run, systems to compose) for the requested names, run dependencies included, in a fixed order."""
    for name in names:
        if name not in ALL_SYSTEMS:
            raise EvalError(f"unknown system {name!r}", choice_hint(name, ALL_SYSTEMS, "use any of"))
    needed = {dependency for name in names for dependency in COMPOSED_SYSTEMS.get(name, (name,))}
    run = [name for name in RUN_SYSTEMS if name in needed]
    composed = [name for name in COMPOSED_SYSTEMS if name in names]
    return run, composed
