"""Admission in front of shared resources: bounded FIFO lines with 429s, slots, and time-limited generations.

The HTTP server and the MCP server share one set of lines, so a turn waits in the same queue whichever way it came.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from assistant.core.assistant import Assistant
from assistant.core.nodes.base import Escalation
from models.base import Message, Tool
from tools.calculator import needs_worker
from tools.words import extract_expression


class QueueFullError(Exception):
    """No room in the waiting line; ``retry_after`` is a hint in seconds."""

    def __init__(self, retry_after: int, what: str = "the server is busy") -> None:
        super().__init__(f"{what}; retry after {retry_after} s")
        self.retry_after = retry_after


class Admission:
    """A bounded FIFO: ``concurrency`` requests run, ``queue_size`` wait, the rest get 429."""

    def __init__(self, concurrency: int, queue_size: int, busy_message: str = "the server is busy") -> None:
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.busy_message = busy_message
        self.waiting = 0
        self._semaphore = asyncio.Semaphore(concurrency)
        self._durations: deque[float] = deque(maxlen=20)
        self._running: dict[int, float] = {}

    def retry_after(self) -> int:
        """Seconds until the line likely has room again: when the running request that started first is expected
        to finish (one finishing lets one waiting request in, which frees one place in the line), from recent
        request durations."""
        average = sum(self._durations) / len(self._durations) if self._durations else 5.0
        now = time.perf_counter()
        remaining = min((average - (now - started) for started in self._running.values()), default=average)
        return max(1, math.ceil(remaining))

    async def acquire(self) -> Slot:
        """Wait for a slot (FIFO); raises QueueFullError when the line is full."""
        if self.waiting >= self.queue_size and self._semaphore.locked():
            raise QueueFullError(self.retry_after(), self.busy_message)
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        slot = Slot(self)
        self._running[id(slot)] = time.perf_counter()
        return slot

    def _free(self, slot: Slot, seconds: float) -> None:
        self._running.pop(id(slot), None)
        self._durations.append(seconds)
        self._semaphore.release()


class Slot:
    """A held admission slot; ``release`` is idempotent, so every exit path may call it."""

    def __init__(self, admission: Admission | None) -> None:
        self._admission = admission
        self._started = time.perf_counter()
        self._released = False

    @classmethod
    def unused(cls) -> Slot:
        """A slot for requests that need no shared resource (small arithmetic): releasing it does nothing."""
        return cls(None)

    def release(self) -> None:
        """Give the slot back (once)."""
        if not self._released and self._admission is not None:
            self._released = True
            self._admission._free(self, time.perf_counter() - self._started)


class Generation:
    """One request's event stream (the routed turn or one tier), with its slot and time limit.

    The slot is given back when the worker thread has really stopped (``on_done``), or at once if generation never
    started. Leaving early (a disconnect, the time limit) cancels the turn: the model stops at its next token.
    """

    def __init__(self, assistant: Assistant, slot: Slot, timeout_s: float) -> None:
        self.assistant = assistant
        self.slot = slot
        self.timeout_s = timeout_s
        self.started = False

    def release_if_unstarted(self) -> None:
        """Give the slot back when no worker thread ever took it (the response ended before generation began)."""
        if not self.started:
            self.slot.release()

    def turn(self, question: str, thread: str, *, escalation: Escalation | None, max_tokens: int | None,
             persist: bool, **knobs: Any) -> AsyncGenerator[dict[str, Any], None]:
        """The routed turn's events, ending with ``answer`` (``knobs``: more keywords of Assistant.stream)."""
        return self._within(self.assistant.astream(question, thread, escalation=escalation, max_tokens=max_tokens,
                                                   persist=persist, on_done=self.slot.release, **knobs))

    def direct(self, tier: str, messages: list[Message], *, max_tokens: int, temperature: float,
               tools: list[Tool] | None = None,
               json_schema: dict[str, Any] | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """One tier's events for ``messages``, ending with ``completion``."""
        return self._within(self.assistant.astream_direct(tier, messages, max_tokens=max_tokens,
                                                          temperature=temperature, tools=tools,
                                                          json_schema=json_schema, on_done=self.slot.release))

    async def _within(self, source: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[dict[str, Any], None]:
        """``source`` under the time limit: TimeoutError when it passes; leaving early cancels the turn."""
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        # From here the slot is the worker thread's to give back (on_done). Awaiting ``anext`` in this task (not in
        # a task of its own, as wait_for would) runs the source up to its first suspension at once, and that start
        # launches the worker thread: no cancellation can fall between "started" and the thread's launch.
        self.started = True
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(source)
                except StopAsyncIteration:
                    return
                yield event
        finally:
            await source.aclose()


class Lines:
    """The two lines of a server: model turns, and long calculations (small arithmetic waits in neither)."""

    def __init__(self, concurrency: int, queue_size: int, calculator_concurrency: int,
                 calculator_queue_size: int) -> None:
        self.models = Admission(concurrency, queue_size)
        self.calculator = Admission(calculator_concurrency, calculator_queue_size,
                                    "the calculator is busy with long calculations")

    async def slot_for(self, question: str | None) -> Slot:
        """A slot for a routed turn on ``question``, or for a direct model call when ``question`` is None."""
        expression = extract_expression(question) if question is not None else None
        if expression is None:
            return await self.models.acquire()
        return await self.calculation_slot(expression)

    async def calculation_slot(self, expression: str) -> Slot:
        """A slot for the calculator on ``expression``: long calculations share the worker, in their own line;
        small arithmetic runs in microseconds in-process and never waits behind anything."""
        return await self.calculator.acquire() if needs_worker(expression) else Slot.unused()
