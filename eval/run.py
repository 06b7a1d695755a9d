"""``assistant eval run``: load a suite, run the systems with the item cache, write results, report and plots."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import choice_hint
from assistant.core.settings import Settings
from common.energy import EnergyMeter
from eval.datasets import user_items
from eval.errors import EvalError
from eval.report import write_report
from eval.results import build_results, machine
from eval.runner import SystemRun, run_system, stratified_limit, timestamp
from eval.suites import Suite, available_suites, suite_loaders
from eval.systems import (
    INDEX_CODE,
    PROJECT_ROOT,
    System,
    SystemFactory,
    WorkerSystem,
    code_hash,
    expand_systems,
    in_process_tiers,
    model_fingerprint,
)
from retrieval.squad import Paragraph

if TYPE_CHECKING:
    from retrieval.documents import Document


def load_suite(name: str, settings: Settings, *, progress: bool = True) -> Suite:
    """A named suite, or a user JSONL file when ``name`` is a path."""
    loaders = suite_loaders(settings.dataset_store(), progress=progress)
    if name in loaders:
        return loaders[name]()
    path = Path(name).expanduser()
    if path.suffix == ".jsonl" or path.exists():
        if not path.is_file():
            raise EvalError(f"no file {path}", "pass an existing JSONL file or a suite name")
        return Suite(str(path), user_items(path), "user")
    suites = [suite for suite in available_suites() if suite != "PATH.jsonl"]
    raise EvalError(f"unknown suite {name!r}", choice_hint(name, suites, "use a JSONL path or one of"))


def scoped_index_name(documents: list[Document], label: str) -> str:
    """The evaluation index's name for ``documents``: keyed by their ids and content and by the code that chunks and
    embeds them (:data:`INDEX_CODE`), so an index built by older code is never reused."""
    digest = hashlib.sha256(code_hash(INDEX_CODE).encode())
    for document in sorted(documents, key=lambda document: document.doc_id):
        digest.update(document.doc_id.encode())
        digest.update(document.content_hash.encode())
    return f"eval-{label}-{digest.hexdigest()[:12]}"


def scoped_settings(settings: Settings, documents: list[Document], label: str, *, progress: bool = True) -> Settings:
    """Settings whose index holds only ``documents``, built once in its own directory (:func:`scoped_index_name`)."""
    from assistant.core.knowledge_base import open_retriever

    retrieval = settings.retrieval.model_copy(update={"index_name": scoped_index_name(documents, label),
                                                      "index_dir": None, "knowledge_base": "none"})
    scoped = settings.model_copy(update={"retrieval": retrieval})
    retriever = open_retriever(scoped, knowledge_base=False, progress=progress)
    if not len(retriever.store):
        retriever.add_documents(documents, progress=progress)
    return scoped


def corpus_settings(settings: Settings, corpus: Path, *, progress: bool = True) -> Settings:
    """Settings whose index holds only the documents read from ``corpus`` (a file or a directory)."""
    from retrieval.documents import read_paths

    if not corpus.exists():
        raise EvalError(f"no corpus file {corpus}", "pass a .txt, .md, .jsonl or .pdf file or a directory of them")
    report = read_paths([corpus])
    if not report.documents:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in report.failures) or "no documents"
        raise EvalError(f"nothing to index in {corpus} ({reasons})", "check the corpus file's format")
    return scoped_settings(settings, report.documents, "corpus", progress=progress)


def paragraph_settings(settings: Settings, paragraphs: tuple[Paragraph, ...], label: str, *,
                       progress: bool = True) -> Settings:
    """Settings whose index holds only a suite's own paragraphs (SQuAD v2.0 dev, a HotpotQA sample)."""
    from retrieval.documents import Document

    documents = [Document(paragraph.doc_id, paragraph.text, paragraph.title, f"{label}: {paragraph.title}")
                 for paragraph in paragraphs]
    return scoped_settings(settings, documents, label, progress=progress)


def squad_index_settings(settings: Settings, *, progress: bool = True) -> Settings:
    """Settings whose index holds the SQuAD v2.0 dev paragraphs only: the corpus of the SQuAD suites (benches)."""
    from eval.suites import SQUAD_CORPUS, squad_corpus

    return paragraph_settings(settings, squad_corpus(settings.dataset_store(), progress=progress), SQUAD_CORPUS,
                              progress=progress)


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The commit the code came from and whether the work tree had uncommitted changes (empty outside git)."""
    import subprocess

    def git(*args: str) -> str:
        completed = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
        return completed.stdout.strip() if completed.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def recorded_settings(settings: Settings) -> dict[str, Any]:
    """The settings a run used, without secrets (the server section holds the API key) or local paths."""
    return settings.model_dump(mode="json", exclude={"server", "cache_dir", "datasets_dir"})


@dataclass
class EvalRun:
    """What ``run_eval`` produced: the results document, the files written, and per-system run counts."""

    results: dict[str, Any]
    written: list[Path]
    runs: dict[str, SystemRun] = field(default_factory=dict)


def run_eval(settings: Settings, *, suite: str, systems: list[str], limit: int | None, output: Path,
             corpus: Path | None = None, progress: bool = True, command: str = "",
             build: Callable[[str], System] | None = None, energy: bool = True, workers: int = 1) -> EvalRun:
    """Run (or resume) ``systems`` on ``suite`` and write the results, report and plots into ``output``.

    ``build`` makes a run system by name (tests pass fakes); by default the real models and index are used.
    ``workers`` items are answered at once: with local tiers in process, by as many worker processes, each with its
    own models and an equal share of llama.cpp's threads; with tiers on a serving engine, by threads sharing it.
    A near-tie between two tokens may then go either way against one at a time (the engine's batching, or what each
    process's context held before, moves token probabilities slightly); with local tiers and ``llama.reuse_prompts``
    off the records equal one at a time's (docs/BENCHMARKS.md)."""
    run_names, composed = expand_systems(systems)
    loaded = load_suite(suite, settings, progress=progress)
    items = stratified_limit(loaded.items, limit)
    if corpus is not None:
        settings = corpus_settings(settings, corpus, progress=progress)
    elif loaded.documents is not None and build is None:
        settings = scoped_settings(settings, list(loaded.documents), loaded.corpus_name or loaded.name,
                                   progress=progress)
    elif loaded.corpus is not None and build is None:
        settings = paragraph_settings(settings, loaded.corpus, loaded.corpus_name or loaded.name, progress=progress)
    item_cache = settings.cache_dir / "eval" / "items"
    runs: dict[str, SystemRun] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as scratch, (
            EnergyMeter() if energy else contextlib.nullcontext(None)) as meter:
        factory = SystemFactory(settings, Path(scratch) / "threads.sqlite", progress=progress)
        make = build or factory.build
        processes = workers > 1 and build is None and in_process_tiers(settings)
        threads = max(1, settings.llama.n_threads // workers)
        for name in run_names:
            worker_build = WorkerSystem(settings, name, Path(scratch), threads) if processes else None
            runs[name] = run_system(make(name), items, item_cache, progress=progress, energy=meter,
                                    workers=workers, worker_build=worker_build)
    failed = {name: run.errors for name, run in runs.items() if run.errors}
    meta = {"created": timestamp(), "suite": suite, "split": loaded.split, "answerable": loaded.answerable,
            "limit": limit, "workers": workers, "worker_processes": processes,
            "git": git_state(), "settings": recorded_settings(settings),
            "models": {tier: model_fingerprint(settings, tier) for tier in ("small", "large")},
            "systems": systems, "command": command,
            "machine": machine(), "elapsed_seconds": round(time.perf_counter() - started, 1),
            "cache_keys": {name: run.key for name, run in runs.items()},
            "reused": {name: run.reused for name, run in runs.items()},
            "computed": {name: run.computed for name, run in runs.items()},
            "errors": failed, "corpus": str(corpus) if corpus else loaded.corpus_name}
    complete = {item.id for item in items if all(item.id in run.records for run in runs.values())}
    kept = [item for item in items if item.id in complete]
    results = build_results(kept, {name: {key: value for key, value in run.records.items() if key in complete}
                                   for name, run in runs.items()},
                            composed=composed, threshold=settings.assistant.threshold,
                            chat_threshold=settings.assistant.chat_threshold,
                            chat_start=settings.assistant.chat_start, meta=meta)
    written = write_report(results, output, results_name=f"results_{meta['created']}.json")
    return EvalRun(results, written, runs)
