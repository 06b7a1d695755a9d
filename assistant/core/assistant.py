"""The Python API for people and agents: ``Assistant.from_settings().ask(question) -> Answer``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from assistant.core.answer import Answer, ModelCall, Source
from assistant.core.decision import Decision, Tier
from assistant.core.escalation import load_escalation_model
from assistant.core.graph import build_graph
from assistant.core.nodes.base import Escalation, GraphDeps, TurnState
from assistant.core.routing import CascadeRouter, Router
from assistant.core.settings import Settings
from assistant.core.storage import open_storage
from assistant.core.text import normalize_question
from assistant.core.threads import ThreadRecord, ThreadSummary, Turn, title_of
from common.energy import PowerModel, codecarbon_power_model
from models.base import ChatModel, GenerationCancelledError, Message, TextDelta, Tool, cancellable
from retrieval.embedders import Embedder
from retrieval.retriever import Hit, Retriever
from tools.calculator import calculate

CANCEL_MEMORY_S = 3600.0
# A turn is checkpointed once, when it ends: per-node checkpoints cost ~10 ms a turn in SQLite writes, and a turn
# cut off midway is simply asked again (the thread keeps every finished turn).
DURABILITY = "exit"


def _clock() -> tuple[float, float]:
    """Wall and process-CPU time now (a turn's start)."""
    return time.perf_counter(), time.process_time()


def _answer(state: dict[str, Any], thread_id: str, started: tuple[float, float], power: PowerModel | None) -> Answer:
    wall = time.perf_counter() - started[0]
    cpu = time.process_time() - started[1]
    return Answer(
        text=state.get("answer", ""), route=state.get("route", ""), thread_id=thread_id,
        confidence=float(state.get("confidence", 0.0)), escalated=bool(state.get("escalated", False)),
        escalation_reason=state.get("escalation_reason", ""), route_stage=state.get("route_stage", ""),
        route_reason=state.get("route_reason", ""),
        sources=[Source.from_dict(source) for source in state.get("sources", [])],
        signals=dict(state.get("signals", {})), features=dict(state.get("features", {})),
        answerable=state.get("answerable"), calculation=state.get("calculation"), working=state.get("working", ""),
        decisions=[Decision.from_dict(item) for item in state.get("decisions", [])],
        usage=[ModelCall.from_dict(call) for call in state.get("usage", [])], trace=list(state.get("trace", [])),
        wall_seconds=round(wall, 4), cpu_seconds=round(cpu, 4),
        energy_joules=round(power.joules(cpu, wall), 3) if power is not None else None,
        energy_source=power.source if power is not None else "",
    )


class Assistant:
    """The routed assistant. Build it with :meth:`from_settings` (real models) or directly (any parts)."""

    def __init__(self, small: ChatModel, large: ChatModel, router: Router, retriever: Retriever | None,
                 settings: Settings, checkpoint_path: Path | None = None, power: PowerModel | None = None) -> None:
        self.settings = settings
        self.power = power  # estimates each answer's energy; None leaves it unknown
        self.retriever = retriever
        self.router = router
        self.models: dict[str, ChatModel] = {"small": small, "large": large}
        self.storage = open_storage(settings, checkpoint_path)
        self.threads = self.storage.threads
        self._cancelled: dict[str, float] = {}  # request id -> when it was cancelled
        deps = GraphDeps(small=small, large=large, router=router, search=self._search, calculate=calculate,
                         settings=settings.assistant, cancelled=self._cancelled.__contains__,
                         similarity=self._similarity if retriever is not None else None,
                         escalation_model=load_escalation_model(settings.assistant.escalation_model))
        self.graph = build_graph(deps, self.storage.checkpointer)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, progress: bool = True,
                      preload_large: bool = False) -> Assistant:
        """The default product: shipped models, MiniLM, the configured index (your documents), threads in SQLite
        (or PostgreSQL: storage.url).

        The large tier loads on its first call unless ``preload_large`` (the servers' default) loads it now, beside
        the small model and the index. An empty index is fine: one line on stderr says how to add documents."""
        from assistant.core.knowledge_base import EMPTY_INDEX_HINT, open_retriever
        from models.registry import ModelPool
        from tools.calculator import warm_up

        settings = settings or Settings.load()
        warm_up()  # the calculator's worker imports SymPy in the background while the models load
        pool = ModelPool(settings)
        large = pool.lazy("large")
        # codecarbon's hardware detection (~1.5 s) and, when asked, the large tier load while the rest does
        background = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="start-up")
        power = background.submit(codecarbon_power_model)
        loading = background.submit(large.load) if preload_large else None
        background.shutdown(wait=False)
        retriever = open_retriever(settings, progress=progress)
        if not len(retriever.follow()):
            print(EMPTY_INDEX_HINT, file=sys.stderr)
        small = pool.get("small")
        router = CascadeRouter(retriever.embedder, small, neighbours=settings.assistant.router_neighbours,
                               min_margin=settings.assistant.router_min_margin)
        if loading is not None:
            loading.result()
        return cls(small, large, router, retriever, settings, power=power.result())

    def loaded_tiers(self) -> list[str]:
        """The model tiers in memory (a tier loaded on first use is missing until then)."""
        return [tier for tier, model in self.models.items() if getattr(model, "loaded", True)]

    @classmethod
    def from_parts(cls, small: ChatModel, large: ChatModel, embedder: Embedder, retriever: Retriever | None,
                   settings: Settings, checkpoint_path: Path | None = None,
                   power: PowerModel | None = None) -> Assistant:
        """An assistant over given parts (tests, custom deployments); the router uses ``embedder`` and ``small``."""
        router = CascadeRouter(embedder, small, neighbours=settings.assistant.router_neighbours,
                               min_margin=settings.assistant.router_min_margin)
        return cls(small, large, router, retriever, settings, checkpoint_path, power)

    def _search(self, question: str, k: int) -> list[Hit]:
        if self.retriever is None or not len(self.retriever.follow()):
            return []
        return self.retriever.search(question, k=k)

    def _similarity(self, question: str, sentences: Sequence[str]) -> list[float]:
        """The embedder's cosine between the question and each sentence (for evidence_method embedding/both)."""
        assert self.retriever is not None
        embedder = self.retriever.embedder
        return [float(value) for value in
                embedder.embed_passages(list(sentences)) @ embedder.embed_queries([question])[0]]

    def _inputs(self, question: str, escalation: Escalation | None, threshold: float | None,
                cost_cap_usd: float | None, max_tokens: int | None, request_id: str | None,
                system_prompt: str = "", answer_with: Tier | None = None,
                temperature: float | None = None) -> TurnState:
        question = normalize_question(question).strip()
        if not question:
            raise ValueError("the question is empty")
        if answer_with not in (None, "small", "large"):
            raise ValueError(f"answer_with must be small or large, not {answer_with!r}")
        return {"question": question, "request_id": request_id or uuid.uuid4().hex,
                "escalation": "never" if answer_with else escalation or self.settings.assistant.escalation,
                "threshold": threshold, "cost_cap_usd": cost_cap_usd, "max_tokens": max_tokens,
                "system_prompt": system_prompt, "answer_with": answer_with, "temperature": temperature}

    def _fork(self, thread: str, replace_last: bool, edit_turn: int | None) -> tuple[int | None, dict[str, Any]]:
        """The turn a new answer takes the place of (``edit_turn``; the last one when ``replace_last``; None: it is
        appended) and the graph config of the turn. A config for a replacing turn continues from before that turn
        (LangGraph forks the thread there: the new turn takes its place and the later ones are dropped). The fork
        point is found along the parent chain of the thread's current checkpoint, never by time: after a fork the
        abandoned branch's checkpoints are newer than the ones it forked from."""
        configurable: dict[str, str] = {"thread_id": thread}
        if edit_turn is None and not replace_last:
            return None, {"configurable": configurable}
        snapshot = self.graph.get_state({"configurable": configurable})
        turns = len(snapshot.values.get("messages", [])) // 2
        from_turn = edit_turn if edit_turn is not None else max(turns - 1, 0)
        if not 0 <= from_turn < max(turns, 1):
            raise ValueError(f"thread {thread!r} has no turn {from_turn} (it has {turns})")
        # An id that names no checkpoint starts from an empty thread (the first turn being answered again).
        checkpoint = "00000000-0000-0000-0000-000000000000"
        while from_turn > 0 and snapshot.parent_config is not None:
            snapshot = self.graph.get_state(snapshot.parent_config)
            if len(snapshot.values.get("messages", [])) == 2 * from_turn:
                checkpoint = snapshot.config["configurable"]["checkpoint_id"]
                break
        configurable["checkpoint_id"] = checkpoint
        return from_turn, {"configurable": configurable}

    def _finish(self, question: str, answer: Answer, persist: bool, from_turn: int | None, client: str,
                system_prompt: str) -> None:
        """Write the finished turn's transcript, or forget the thread of a turn nobody wants kept."""
        if persist:
            self.threads.record(answer.thread_id, question, answer.text, answer.view(answer.thread_id).to_dict(),
                                replace_from=from_turn, client=client, system_prompt=system_prompt)
        else:
            self.forget(answer.thread_id)

    def _keep_stopped(self, question: str, written: str, config: dict[str, Any], from_turn: int | None,
                      client: str, system_prompt: str) -> None:
        """Keep a stopped turn as far as it was written, marked stopped: in the thread's history (the next turn's
        chat sees what the person saw) and in its transcript, where an unstopped turn would have gone."""
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": written}]
        # as the turn's last node: the thread ends there, whichever node the stop interrupted
        self.graph.update_state(config, {"answer": written, "messages": messages}, as_node="escalate")
        thread = config["configurable"]["thread_id"]
        self.threads.record(thread, question, written, {"stopped": True, "thread_id": thread},
                            replace_from=from_turn, client=client, system_prompt=system_prompt)

    def ask(self, question: str, thread_id: str | None = None, *, escalation: Escalation | None = None,
            threshold: float | None = None, cost_cap_usd: float | None = None, max_tokens: int | None = None,
            persist: bool = True, replace_last: bool = False, edit_turn: int | None = None, client: str = "api",
            system_prompt: str = "", answer_with: Tier | None = None, temperature: float | None = None) -> Answer:
        """Answer one question; pass a ``thread_id`` to continue a conversation (CHAT sees its history).

        ``max_tokens`` lowers the answer's token budget; ``persist=False`` forgets the turn once answered;
        ``replace_last`` answers in place of the thread's last turn (regenerate), ``edit_turn`` in place of that
        turn (0 is the first; the turns after it are dropped: an edited question forks the thread); ``client`` tags
        a new thread with what made it (``web``, ``mcp``, ``api``, an agent's name: the page lists its own);
        ``system_prompt`` is the person's own instructions for CHAT answers (kept with the thread; documents answers
        and the calculator do not take instructions); ``answer_with`` (``small`` or ``large``) has that model answer
        the question as a chat, with no routing, tools or escalation (a person's model choice); ``temperature``
        samples a chat answer (a regenerated one that should differ; documents answers and the calculator stay
        greedy).
        """
        thread = thread_id or uuid.uuid4().hex
        started = _clock()
        from_turn, config = self._fork(thread, replace_last, edit_turn)
        try:
            state = self.graph.invoke(self._inputs(question, escalation, threshold, cost_cap_usd, max_tokens, None,
                                                   system_prompt, answer_with, temperature), config,
                                      durability=DURABILITY)
        except BaseException:
            if not persist:
                self.forget(thread)
            raise
        answer = _answer(state, thread, started, self.power)
        self._finish(state["question"], answer, persist, from_turn, client, system_prompt)
        return answer

    def stream(self, question: str, thread_id: str | None = None, *, escalation: Escalation | None = None,
               threshold: float | None = None, cost_cap_usd: float | None = None, max_tokens: int | None = None,
               persist: bool = True, replace_last: bool = False, edit_turn: int | None = None,
               client: str = "api", system_prompt: str = "", answer_with: Tier | None = None,
               temperature: float | None = None, request_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield ``{"type": "start"|"step"|"token"|"working"|"escalate"|"reset"|"answer", ...}`` events; the last
        carries the Answer. ``working`` events carry a word problem's working as it is written (not the answer's
        text: the answer is the number they end in, with its unit).

        A turn whose ``request_id`` is passed to :meth:`cancel` stops at its next token (GenerationCancelledError).
        """
        thread = thread_id or uuid.uuid4().hex
        started = _clock()
        from_turn, config = self._fork(thread, replace_last, edit_turn)
        inputs = self._inputs(question, escalation, threshold, cost_cap_usd, max_tokens, request_id, system_prompt,
                              answer_with, temperature)
        finished = False
        written = ""  # the answer as written so far: what a reader of drafts saw if the turn is stopped
        try:
            yield {"type": "start", "request_id": inputs["request_id"], "thread_id": thread}
            for mode, payload in self.graph.stream(inputs, config, stream_mode=["updates", "custom"],
                                                   durability=DURABILITY):
                if mode == "custom":
                    if "token" in payload:
                        written += payload["token"]
                        yield {"type": "token", "text": payload["token"], "model": payload["model"]}
                    elif "working" in payload:
                        yield {"type": "working", "text": payload["working"], "model": payload["model"]}
                    else:
                        if payload.get("event") == "reset":
                            written = str(payload.get("text", ""))
                        yield {"type": payload.get("event", "event"), **payload}
                else:
                    for node, update in payload.items():
                        trace = (update or {}).get("trace") or [{}]
                        yield {"type": "step", "step": node, "detail": trace[-1]}
            state = self.graph.get_state({"configurable": {"thread_id": thread}}).values
            answer = _answer(state, thread, started, self.power)
            self._finish(inputs["question"], answer, persist, from_turn, client, system_prompt)
            finished = True
            yield {"type": "answer", "answer": answer}
        except GenerationCancelledError:
            if persist:
                self._keep_stopped(inputs["question"], written.strip(), config, from_turn, client, system_prompt)
            raise
        finally:
            self._cancelled.pop(inputs["request_id"], None)
            if not persist and not finished:
                self.forget(thread)

    def stream_direct(self, tier: str, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
                      tools: list[Tool] | None = None, json_schema: dict[str, Any] | None = None,
                      request_id: str | None = None) -> Iterator[dict[str, Any]]:
        """One tier answering ``messages`` as given (no routing): ``start``, ``token``s, ``completion``.

        With ``tools`` (OpenAI function definitions) the completion may carry ``tool_calls`` for the caller to run;
        ``json_schema`` constrains the reply (the server uses it to force a tool call).
        Cancelled like :meth:`stream`, through the same per-token check.
        """
        if tier not in self.models:
            raise ValueError(f"no model tier {tier!r}; choose one of {', '.join(self.models)}")
        request_id = request_id or uuid.uuid4().hex
        try:
            yield {"type": "start", "request_id": request_id}
            options: dict[str, Any] = {"tools": tools} if tools else {}
            if json_schema is not None:
                options["json_schema"] = json_schema
            items = self.models[tier].stream(messages, max_tokens=max_tokens, temperature=temperature, **options)
            for item in cancellable(items, lambda: request_id in self._cancelled):
                if isinstance(item, TextDelta):
                    yield {"type": "token", "text": item.text, "model": tier}
                else:
                    yield {"type": "completion", "completion": item}
        finally:
            self._cancelled.pop(request_id, None)

    async def aask(self, question: str, thread_id: str | None = None, **knobs: Any) -> Answer:
        """:meth:`ask` without blocking the event loop (runs in a worker thread)."""
        return await asyncio.to_thread(self.ask, question, thread_id, **knobs)

    def astream(self, question: str, thread_id: str | None = None, *, on_done: Callable[[], None] | None = None,
                **knobs: Any) -> AsyncGenerator[dict[str, Any], None]:
        """:meth:`stream` as an async iterator (the graph runs in a worker thread).

        A consumer that stops early cancels the turn: generation stops at the next token. ``on_done`` runs in the
        event loop once the worker thread has really stopped (after the answer, an error or a cancellation).
        """
        request_id = uuid.uuid4().hex
        return self._cancellable(lambda: self.stream(question, thread_id, request_id=request_id, **knobs),
                                 request_id, on_done)

    def astream_direct(self, tier: str, messages: list[Message], *, on_done: Callable[[], None] | None = None,
                       **options: Any) -> AsyncGenerator[dict[str, Any], None]:
        """:meth:`stream_direct` as an async iterator, cancelled and finished like :meth:`astream`."""
        request_id = uuid.uuid4().hex
        return self._cancellable(lambda: self.stream_direct(tier, messages, request_id=request_id, **options),
                                 request_id, on_done)

    async def _cancellable(self, make: Callable[[], Iterator[dict[str, Any]]], request_id: str,
                           on_done: Callable[[], None] | None) -> AsyncGenerator[dict[str, Any], None]:
        finished = False
        try:
            async for event in iterate_in_thread(lambda: _quiet_when_cancelled(make()), on_done=on_done):
                yield event
            finished = True
        finally:
            if not finished:
                self.cancel(request_id)

    def cancel(self, request_id: str) -> None:
        """Stop the turn ``request_id`` at its next generated token (streaming callers that went away).

        A turn removes its id when it ends; an id cancelled after its turn ended (or for no turn) is forgotten after
        CANCEL_MEMORY_S, so abandoned requests cannot pile up."""
        if request_id:
            now = time.monotonic()
            for stale in [key for key, when in list(self._cancelled.items()) if now - when > CANCEL_MEMORY_S]:
                self._cancelled.pop(stale, None)
            self._cancelled[request_id] = now

    def forget(self, thread_id: str) -> None:
        """Delete a thread and every turn in it (what the models remember and the transcript people see)."""
        self.graph.checkpointer.delete_thread(thread_id)
        self.threads.delete(thread_id)

    def thread(self, thread_id: str) -> ThreadRecord | None:
        """A thread's transcript (None when there is no such thread). A thread kept only by the checkpointer (one
        from before transcripts were stored) comes back with its messages and no answer details."""
        record = self.threads.thread(thread_id)
        if record is not None:
            return record
        messages = self.history(thread_id)
        if not messages:
            return None
        turns = [Turn(question["content"], answer["content"], {}, 0.0)
                 for question, answer in zip(messages[::2], messages[1::2], strict=False)]
        return ThreadRecord(ThreadSummary(thread_id, title_of(turns[0].question) if turns else "", 0.0, 0.0,
                                          len(turns)), turns)

    def history(self, thread_id: str) -> list[dict[str, str]]:
        """The messages of a thread, oldest first."""
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}}).values
        return list(state.get("messages", []))

    def as_tool(self) -> AssistantTool:
        """This assistant as a tool with a name, description and JSON schema, for agents to register."""
        return AssistantTool(self)

    def close(self) -> None:
        """Close the thread database (idempotent)."""
        self.storage.close()


async def iterate_in_thread(make: Callable[[], Iterator[Any]], *,
                            on_done: Callable[[], None] | None = None) -> AsyncIterator[Any]:
    """Iterate a blocking iterator in a worker thread without blocking the event loop.

    An exception raised by the iterator is raised here once the items before it are consumed. ``on_done`` runs in
    the event loop when the worker thread has finished with the iterator, however it ended.
    """
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def produce() -> None:
        try:
            for item in make():
                loop.call_soon_threadsafe(queue.put_nowait, (False, item))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, (True, None))
            if on_done is not None:
                with contextlib.suppress(RuntimeError):  # the event loop has closed: nobody is waiting
                    loop.call_soon_threadsafe(on_done)

    task = loop.run_in_executor(None, produce)
    while True:
        done, item = await queue.get()
        if done:
            break
        yield item
    await task


def _quiet_when_cancelled(events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``events`` ending silently when its generation was cancelled (the consumer has gone already)."""
    try:
        yield from events
    except GenerationCancelledError:
        return


class AssistantTool:
    """A callable tool for LangGraph/LangChain or OpenAI tool-calling agents: ``tool(question=...) -> str``."""

    name = "local_assistant"
    description = (
        "Answers a question locally: arithmetic exactly with a calculator, facts from the indexed documents with "
        "citations, anything else with a small language model that escalates to a larger one when unsure."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question to answer."}},
        "required": ["question"],
        "additionalProperties": False,
    }

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def __call__(self, question: str) -> str:
        """The answer text, with its sources' chunk ids when it used documents."""
        answer = self.assistant.ask(question)
        cited = ", ".join(source.chunk_id for source in answer.used_sources)
        return f"{answer.text}" + (f" (sources: {cited})" if cited and "[" not in answer.text else "")

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}
