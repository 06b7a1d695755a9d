"""`assistant eval ...` and `assistant index evaluate`: the only commands that reach the evaluation (eval/)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from assistant.cli.common import local_tiers, with_settings
from assistant.cli.index import open_index
from assistant.core.settings import Settings
from eval.names import ALL_SYSTEMS, DEFAULT_SYSTEMS


def add_commands(commands: Any, index_commands: Any) -> None:
    """Register ``eval ...`` on the top-level subparsers and ``index evaluate`` on the index's."""
    evaluation = commands.add_parser("eval", help="accuracy and cost of the routed system against the large model")
    eval_commands = evaluation.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    datasets = eval_commands.add_parser("datasets", help="list the suites and datasets the eval can load")
    datasets.add_argument("--fetch", action="store_true",
                          help="fetch and verify every dataset file now (from --datasets-dir first, if set)")
    datasets.add_argument("--sources", action="store_true",
                          help="list every dataset file: cache name, sha256 and sources (for offline copies)")
    with_settings(datasets, _eval_datasets)
    run = eval_commands.add_parser("run", help="run systems on a suite (resumes from the per-item cache)")
    run.add_argument("--suite", default="mixed-test",
                     help="a suite name (see `eval datasets`; tune on mixed-dev, report on mixed-test) or a JSONL file")
    run.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                     help=f"comma-separated, from: {', '.join(ALL_SYSTEMS)} (default: all)")
    run.add_argument("--limit", type=int, default=None, help="a stratified subset of N items")
    run.add_argument("--corpus", type=Path, default=None, help="documents for fact questions (default: the index)")
    run.add_argument("--output", type=Path, default=Path("eval-results"), help="where results and report go")
    run.add_argument("--workers", type=int, default=1, help=(
        "items answered at once (default 1): with in-process tiers, by N processes each with its own models and "
        "1/N of llama.cpp's threads; with tiers on a serving engine "
        "(--llama-engine llama-server or endpoints), by N threads whose requests it batches; above 1, energy is "
        "not measured per item and per-item times include waiting for a shared core or model"))
    with_settings(run, _eval_run)
    report = eval_commands.add_parser("report", help="re-render report.md and the plots from a results file")
    report.add_argument("location", type=Path, nargs="?", default=Path("eval-results"),
                        help="a results_*.json or the directory holding it (default: eval-results)")
    report.add_argument("--chat-start", choices=("small", "large"), default=None, help=(
        "compose the routed system again as if assistant.chat_start had been this (for results run before it "
        "changed; nothing else that answers may have changed), and write the new results to --output"))
    report.add_argument("--output", type=Path, default=None, help="where --chat-start's results and report go")
    with_settings(report, _eval_report)
    headline = eval_commands.add_parser("headline", help="print the README's headline table from results files")
    headline.add_argument("locations", type=Path, nargs="+",
                          help="results_*.json files or the directories holding them, one block of rows each")
    with_settings(headline, _eval_headline)
    calibrate = eval_commands.add_parser("calibrate", help="write the threshold meeting a target to the settings")
    target = calibrate.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-escalation", type=float, help="largest share of turns to escalate, e.g. 0.2")
    target.add_argument("--target-accuracy", type=float, help="accuracy to reach with the least escalation, e.g. 0.6")
    target.add_argument("--target-relative", type=float,
                        help="share of large-pipeline's accuracy to reach with the least escalation, e.g. 0.95")
    calibrate.add_argument("--results", type=Path, default=Path("eval-results"),
                           help="a results_*.json or its directory (default: eval-results)")
    calibrate.add_argument("--settings-file", type=Path, default=None,
                           help="the TOML file to update (default: --config, $ASSISTANT_CONFIG or ./assistant.toml)")
    with_settings(calibrate, _eval_calibrate)
    train = eval_commands.add_parser("train-escalation",
                                     help="fit the escalation models on dev results and write their JSON weights")
    train.add_argument("results", type=Path, nargs="+",
                       help="dev results_*.json files or their directories (mixed-dev, facts-dev, unanswerable-dev)")
    train.add_argument("--output", type=Path, default=None,
                       help="where the weights go (default: the escalation_model setting, else the shipped file)")
    train.add_argument("--keep", action="append", default=[], help=(
        "models to keep as they are from the current weights instead of refitting, comma-separated or repeated, "
        "e.g. --keep program_large --keep answerable"))
    train.add_argument("--chat-labels", type=Path, default=None, help=(
        "hand labels of chat answers, JSONL (default: the shipped eval/data/chat_labels.jsonl)"))
    with_settings(train, _eval_train_escalation)

    evaluate = index_commands.add_parser(
        "evaluate", help="Recall@1/5/20 and latency of the configured retrieval on SQuAD v2.0 dev questions "
        "(in an index of their own paragraphs, not yours)")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate the first N questions only")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    with_settings(evaluate, _index_evaluate)



def _eval_datasets(args: argparse.Namespace, settings: Settings) -> int:
    from common.sources import DATASET_FILES, GeneratedFiles
    from eval.documents import DOCUMENTS, document_paths
    from eval.suites import available_suites

    store = settings.dataset_store()
    if args.sources:
        for entry in (*DATASET_FILES, *(document.source for document in DOCUMENTS)):
            file = entry.generator if isinstance(entry, GeneratedFiles) else entry
            sources = [f"{file.package.requirement} ({file.package.path})", *([file.url] if file.url else [])]
            print(f"{file.name}  sha256 {file.sha256}\n  {file.dataset}: " + "; or ".join(sources))
            if isinstance(entry, GeneratedFiles):
                for output in entry.outputs:
                    member = entry.member(output)
                    print(f"{member.name}  sha256 {member.sha256}\n  {entry.dataset}: written by {file.name}")
        return 0
    if args.fetch:
        paths = store.fetch_all(progress=True)
        documents = document_paths(store, progress=True)
        print(f"{len(paths)} dataset files and the documents suite's {len(documents)} documents verified in "
              f"{store.directory}")
        return 0
    for name, description in available_suites().items():
        print(f"{name:<20} {description}")
    return 0


def _eval_run(args: argparse.Namespace, settings: Settings) -> int:
    from eval.run import run_eval

    systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    command = "assistant " + " ".join(shlex.quote(part) for part in sys.argv[1:])
    try:
        with local_tiers(settings) as served:  # each local tier on llama-server when llama.engine says so
            outcome = run_eval(served, suite=args.suite, systems=systems, limit=args.limit, output=args.output,
                               corpus=args.corpus, command=command, workers=args.workers)
    except KeyboardInterrupt:
        print("interrupted: every answered item is cached; run the same command again to resume", file=sys.stderr)
        return 130
    for name, run in outcome.runs.items():
        errors = f", {len(run.errors)} failed (not cached; rerun to retry)" if run.errors else ""
        print(f"{name}: {run.computed} answered, {run.reused} from the cache{errors}")
    for path in outcome.written:
        print(f"wrote {path}")
    return 1 if any(run.errors for run in outcome.runs.values()) else 0


def _eval_report(args: argparse.Namespace, settings: Settings) -> int:
    from eval.errors import EvalError
    from eval.report import write_report
    from eval.results import latest_results, load_results, recomposed

    path = latest_results(args.location)
    if args.chat_start is None:
        for written in write_report(load_results(path), path.parent):
            print(f"wrote {written}")
        return 0
    if args.output is None or args.output.resolve() == path.parent.resolve():
        raise EvalError("--chat-start writes new results: give --output, another directory than the run's")
    results = recomposed(load_results(path), path, chat_start=args.chat_start)
    for written in write_report(results, args.output, results_name=path.name):
        print(f"wrote {written}")
    return 0


def _eval_headline(args: argparse.Namespace, settings: Settings) -> int:
    from eval.render import render_headline
    from eval.results import load_results

    print(render_headline([load_results(location) for location in args.locations]), end="")
    return 0


def _eval_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.core.escalation import load_escalation_model
    from assistant.core.settings import DEFAULT_CONFIG_NAME, resolve_config_file
    from eval.calibrate import calibrate

    settings_file = args.settings_file or resolve_config_file(args.config) or Path(DEFAULT_CONFIG_NAME)
    result = calibrate(args.results, settings_file, target_escalation=args.target_escalation,
                       target_accuracy=args.target_accuracy, target_relative=args.target_relative,
                       model=load_escalation_model(settings.assistant.escalation_model))
    print(result.summary())
    return 0


def _eval_train_escalation(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.core.escalation import DEFAULT_MODEL_PATH
    from eval.escalation import train_escalation
    from eval.results import latest_results

    output = args.output or settings.assistant.escalation_model or DEFAULT_MODEL_PATH
    current = settings.assistant.escalation_model or DEFAULT_MODEL_PATH
    paths = [latest_results(location) for location in args.results]
    keep = list(dict.fromkeys(name.strip() for value in args.keep for name in value.split(",") if name.strip()))
    command = " ".join(["assistant eval train-escalation", *(str(path) for path in args.results),
                        *(["--keep", ",".join(keep)] if keep else [])])
    model = train_escalation(paths, output, command=command, keep=keep, kept_from=current,
                             chat_labels=args.chat_labels)
    for name, metrics in model.meta["metrics"].items():
        if name in keep:
            print(f"{name}: kept as it was ({current})")
            continue
        if "skipped" in metrics:
            print(f"{name}: {metrics['rows']} rows, skipped ({metrics['skipped']})")
            continue
        print(f"{name}: {metrics['rows']} rows ({metrics['positives']} positive), C={metrics['C']}, "
              f"cross-validated AUC {metrics['cv_auc']}, ECE {metrics['cv_ece']}, Brier {metrics['cv_brier']}")
    print(f"wrote {output} (sha256 {model.digest})")
    return 0


def _index_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from eval.retrieval_quality import evaluate_retrieval
    from eval.run import paragraph_settings
    from eval.suites import SQUAD_CORPUS
    from retrieval.squad import load_squad_dev

    squad = load_squad_dev(settings.dataset_store())
    retriever = open_index(paragraph_settings(settings, squad.paragraphs, SQUAD_CORPUS))
    questions = squad.answerable[: args.limit] if args.limit else squad.answerable
    result = evaluate_retrieval(retriever, questions)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['questions']} questions over {result['documents']} documents ({result['chunks']} chunks), "
          f"embedder {result['embedder']}")
    print(f"{'mode':<8} {'R@1':>6} {'R@5':>6} {'R@20':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for mode, recall in result["recall"].items():
        latency = result["latency_ms"][mode]
        print(f"{mode:<8} {recall['@1']:>6.3f} {recall['@5']:>6.3f} {recall['@20']:>6.3f} "
              f"{latency['p50']:>8.2f} {latency['p95']:>8.2f}")
    print(f"query embedding p50 {result['query_embedding_ms']['p50']} ms; "
          f"indexing {result['indexing_chunks_per_s']} chunks/s")
    return 0
