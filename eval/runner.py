"""Run systems over a suite with a per-item cache: an interrupted run resumes and nothing is computed twice.

Each run system keeps one append-only JSONL file per fingerprint (system, model hashes, settings, prompts) under
``<cache_dir>/eval/items/``; a record is flushed and fsynced as soon as its item is answered. A line cut short by a
crash is ignored on the next start and its item is answered again. Errors are reported, not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.energy import EnergyMeter
from common.files import LockBusyError, file_lock
from eval.datasets import KINDS, EvalItem
from eval.errors import EvalError
from eval.systems import System, fingerprint_key


def question_hash(item: EvalItem) -> str:
    """A short hash of what the item asks, so a cached record never answers a changed question."""
    material = json.dumps([item.kind, item.question], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()[:12]


class ItemCache:
    """The cached records of one system fingerprint: an append-only JSONL file, one line per answered item."""

    def __init__(self, directory: Path, system: System) -> None:
        self.fingerprint = system.fingerprint()
        self.key = fingerprint_key(self.fingerprint)
        self.path = directory / f"{system.name}-{self.key}.jsonl"
        self.records: dict[str, dict[str, Any]] = {}
        self._handle: Any = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Read every complete line; a torn last line (a crash mid-write) is skipped."""
        self.records = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and "item_id" in record:
                    self.records[f"{record['item_id']}|{record.get('question_sha', '')}"] = record
        return self.records

    def get(self, item: EvalItem) -> dict[str, Any] | None:
        """The cached record of ``item``, if any."""
        return self.records.get(f"{item.id}|{question_hash(item)}")

    @contextlib.contextmanager
    def open(self) -> Iterator[ItemCache]:
        """Hold the file for appending (exclusively: two runs of one fingerprint would answer items twice)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fingerprint_file = self.path.with_suffix(".fingerprint.json")
        if not fingerprint_file.exists():
            fingerprint_file.write_text(json.dumps(self.fingerprint, indent=2, default=str), encoding="utf-8")
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.path.with_suffix(".lock"), wait=False))
            except LockBusyError:
                raise EvalError(f"another evaluation is writing {self.path}",
                                "wait for it to finish (runs of the same system and settings resume each other)"
                                ) from None
            handle = stack.enter_context(self.path.open("a", encoding="utf-8"))
            self.load()
            self._handle = handle
            try:
                yield self
            finally:
                self._handle = None

    def add(self, item: EvalItem, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` for ``item`` and make it durable before returning."""
        assert self._handle is not None, "use `with cache.open():`"
        full = {"item_id": item.id, "question_sha": question_hash(item), **record}
        self._handle.write(json.dumps(full, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.records[f"{item.id}|{full['question_sha']}"] = full
        return full


@dataclass
class SystemRun:
    """What one run system produced over the suite: records by item id, plus counts for the progress report."""

    name: str
    key: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    computed: int = 0


def _answer(system: System, item: EvalItem, meter: EnergyMeter | None) -> tuple[dict[str, Any] | None, str]:
    """(the record's fields, "") or (None, the error), measuring the answer's energy with ``meter`` when given."""
    measured: dict[str, Any] = {}
    try:
        with meter.measure(measured) if meter is not None else contextlib.nullcontext():
            record = system.answer(item)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    return {"system": system.name, "kind": item.kind, **record, **measured}, ""


# The system an evaluation worker process answers with (built once per process by _start_worker).
_worker_system: System | None = None


def _start_worker(build: Callable[[], System]) -> None:
    global _worker_system
    _worker_system = build()


def _answer_in_worker(item: EvalItem) -> tuple[dict[str, Any] | None, str]:
    assert _worker_system is not None, "the worker was not started"
    return _answer(_worker_system, item, None)


def _executor(workers: int, worker_build: Callable[[], System] | None) -> Executor:
    if worker_build is None:
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval")
    # spawn, not fork: the parent may hold loaded models and threads (llama.cpp, torch) a fork would copy half-made
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(worker_build,))


def run_system(system: System, items: list[EvalItem], cache_dir: Path, *, progress: bool = True,
               on_record: Callable[[EvalItem, dict[str, Any]], None] | None = None,
               energy: EnergyMeter | None = None, workers: int = 1,
               worker_build: Callable[[], System] | None = None) -> SystemRun:
    """Answer every item not yet cached for this system's fingerprint; return all records for ``items``.

    With ``energy``, each answer's joules are measured and stored in its record. ``workers`` items are answered at
    once: by threads sharing ``system`` (for tiers on a serving engine that batches them), or, given
    ``worker_build`` (picklable: it is called in each of ``workers`` processes to make that process's own copy of
    the system, e.g. its own in-process models), by worker processes. Either way energy is not measured per item
    (answers overlap), per-item times include any wait for a shared model, and records go to this process's cache
    under ``system``'s fingerprint."""
    if workers < 1:
        raise EvalError(f"--workers {workers} is not a number of workers", "pass 1 or more, e.g. --workers 4")
    meter = (energy or EnergyMeter()) if workers == 1 else None
    cache = ItemCache(cache_dir, system)
    run = SystemRun(system.name, cache.key)
    with cache.open():
        todo = []
        for item in items:
            cached = cache.get(item)
            if cached is not None and system.reusable(item, cached):
                run.records[item.id] = cached
                run.reused += 1
            else:
                todo.append(item)
        bar = tqdm(desc=f"{system.name:>22}", unit="item", disable=not progress or not todo, total=len(todo))

        def keep(item: EvalItem, record: dict[str, Any] | None, error: str) -> None:
            bar.update()
            if record is None:
                run.errors[item.id] = error
                return
            run.records[item.id] = cache.add(item, record)
            run.computed += 1
            if on_record is not None:
                on_record(item, run.records[item.id])

        with bar:
            if workers == 1:
                for item in todo:
                    keep(item, *_answer(system, item, meter))
            else:
                with _executor(workers, worker_build) as pool:
                    futures = {(pool.submit(_answer, system, item, None) if worker_build is None
                                else pool.submit(_answer_in_worker, item)): item for item in todo}
                    try:
                        for future in as_completed(futures):  # kept (and cached) in the order they finish
                            keep(futures[future], *future.result())
                    except BrokenProcessPool:
                        raise EvalError("an evaluation worker process died (out of memory, or killed)",
                                        "run the same command again: every answered item is cached") from None
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
    return run


def stratified_limit(items: list[EvalItem], limit: int | None) -> list[EvalItem]:
    """A ``limit``-item subset keeping each kind's share (largest remainders first) and, within a kind, spreading
    over its sources (the 20 arithmetic tasks, the chat datasets' categories) in turn; returned in suite order."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        raise EvalError("--limit must be positive", "pass a number of items, e.g. --limit 50")
    by_kind = {kind: _interleave_sources([item for item in items if item.kind == kind]) for kind in KINDS}
    exact = {kind: limit * len(group) / len(items) for kind, group in by_kind.items()}
    counts = {kind: int(value) for kind, value in exact.items()}
    for kind in sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True):
        if sum(counts.values()) >= limit:
            break
        if counts[kind] < len(by_kind[kind]):
            counts[kind] += 1
    chosen = {item.id for kind, group in by_kind.items() for item in group[: counts[kind]]}
    return [item for item in items if item.id in chosen]


def _interleave_sources(items: list[EvalItem]) -> list[EvalItem]:
    """The items taking each source in turn (first the first item of every source, then the second, ...); the order
    within a source is kept. A kind with one source (SQuAD facts, word problems) keeps its order."""
    by_source: dict[str, list[EvalItem]] = {}
    for item in items:
        by_source.setdefault(item.source, []).append(item)
    rounds = itertools.zip_longest(*by_source.values())
    return [item for round_ in rounds for item in round_ if item is not None]


def timestamp() -> str:
    """A filesystem-safe UTC timestamp for result files."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
