"""``assistant eval run``: load a suite, run the systems with the item cache, write results, report and plots."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import choice_hint
from assistant.settings import Settings
from eval.datasets import (
    GSM_SEED,
    EvalItem,
    available_datasets,
    bigbench_arithmetic_items,
    gsm_symbolic_items,
    mixed_suite,
    mt_bench_items,
    squad_items,
    user_items,
)
from eval.errors import EvalError
from eval.report import build_results, machine, write_report
from eval.runner import SystemRun, run_system, stratified_limit, timestamp
from eval.systems import System, SystemFactory, expand_systems

GSM_DEFAULT_COUNT = 100


def load_suite(name: str, settings: Settings, *, progress: bool = True) -> list[EvalItem]:
    """The items of a named suite, or of a user JSONL file when ``name`` is a path."""
    cache = settings.cache_dir
    loaders: dict[str, Callable[[], list[EvalItem]]] = {
        "mixed": lambda: mixed_suite(cache, progress=progress),
        "squad-dev": lambda: squad_items(cache, progress=progress),
        "bigbench-arithmetic": lambda: bigbench_arithmetic_items(cache, progress=progress),
        "gsm-symbolic": lambda: gsm_symbolic_items(GSM_DEFAULT_COUNT, seed=GSM_SEED),
        "mt-bench": lambda: mt_bench_items(cache, progress=progress),
    }
    if name in loaders:
        return loaders[name]()
    path = Path(name).expanduser()
    if path.suffix == ".jsonl" or path.exists():
        if not path.is_file():
            raise EvalError(f"no file {path}", "pass an existing JSONL file or a suite name")
        return user_items(path)
    suites = [suite for suite in available_datasets() if suite != "PATH.jsonl"]
    raise EvalError(f"unknown suite {name!r}", choice_hint(name, suites, "use a JSONL path or one of"))


def corpus_settings(settings: Settings, corpus: Path, *, progress: bool = True) -> Settings:
    """Settings whose index holds only ``corpus`` (indexed once into its own directory, keyed by its sha256)."""
    from retrieval.documents import read_paths
    from retrieval.knowledge_base import open_retriever

    if not corpus.exists():
        raise EvalError(f"no corpus file {corpus}", "pass a .txt, .md, .jsonl or .pdf file or a directory of them")
    digest = hashlib.sha256()
    files = sorted(path for path in ([corpus] if corpus.is_file() else corpus.rglob("*")) if path.is_file())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    retrieval = settings.retrieval.model_copy(update={"index_name": f"eval-corpus-{digest.hexdigest()[:12]}",
                                                      "index_dir": None, "knowledge_base": "none"})
    scoped = settings.model_copy(update={"retrieval": retrieval})
    retriever = open_retriever(scoped, knowledge_base=False, progress=progress)
    if not len(retriever.store):
        report = read_paths([corpus])
        if not report.documents:
            reasons = "; ".join(f"{path}: {reason}" for path, reason in report.failures) or "no documents"
            raise EvalError(f"nothing to index in {corpus} ({reasons})", "check the corpus file's format")
        retriever.add_documents(report.documents, progress=progress)
    return scoped


@dataclass
class EvalRun:
    """What ``run_eval`` produced: the results document, the files written, and per-system run counts."""

    results: dict[str, Any]
    written: list[Path]
    runs: dict[str, SystemRun] = field(default_factory=dict)


def run_eval(settings: Settings, *, suite: str, systems: list[str], limit: int | None, output: Path,
             corpus: Path | None = None, progress: bool = True, command: str = "",
             build: Callable[[str], System] | None = None) -> EvalRun:
    """Run (or resume) ``systems`` on ``suite`` and write the results, report and plots into ``output``.

    ``build`` makes a run system by name (tests pass fakes); by default the real models and index are used.
    """
    run_names, composed = expand_systems(systems)
    items = stratified_limit(load_suite(suite, settings, progress=progress), limit)
    if corpus is not None:
        settings = corpus_settings(settings, corpus, progress=progress)
    item_cache = settings.cache_dir / "eval" / "items"
    runs: dict[str, SystemRun] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as scratch:
        factory = SystemFactory(settings, Path(scratch) / "threads.sqlite", progress=progress)
        make = build or factory.build
        for name in run_names:
            runs[name] = run_system(make(name), items, item_cache, progress=progress)
    failed = {name: run.errors for name, run in runs.items() if run.errors}
    meta = {"created": timestamp(), "suite": suite, "limit": limit, "systems": systems, "command": command,
            "machine": machine(), "elapsed_seconds": round(time.perf_counter() - started, 1),
            "cache_keys": {name: run.key for name, run in runs.items()},
            "reused": {name: run.reused for name, run in runs.items()},
            "computed": {name: run.computed for name, run in runs.items()},
            "errors": failed, "corpus": str(corpus) if corpus else None}
    complete = {item.id for item in items if all(item.id in run.records for run in runs.values())}
    kept = [item for item in items if item.id in complete]
    results = build_results(kept, {name: {key: value for key, value in run.records.items() if key in complete}
                                   for name, run in runs.items()},
                            composed=composed, threshold=settings.assistant.threshold,
                            chat_threshold=settings.assistant.chat_threshold, meta=meta)
    written = write_report(results, output, results_name=f"results_{meta['created']}.json")
    return EvalRun(results, written, runs)
