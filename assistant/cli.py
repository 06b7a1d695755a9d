"""The `assistant` command line: models, chat and (as they land) the rest of the product."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import AssistantError
from assistant.core.settings import Settings
from assistant.flags import add_settings_flags, overrides_from_args
from eval.names import ALL_SYSTEMS, DEFAULT_SYSTEMS

if TYPE_CHECKING:
    from assistant.core.answer import Answer

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand and the generated settings flags."""
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="A small-model-first local assistant. Settings: defaults < TOML < ASSISTANT_* env < flags.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="fetch, list and verify the model tiers")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    fetch = model_commands.add_parser("fetch", help="fetch shipped weights from the registry and verify them")
    fetch.add_argument("aliases", nargs="*", help="tiers to fetch (default: every shipped tier)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if a verified file exists")
    _with_settings(fetch, _models_fetch)
    listing = model_commands.add_parser("list", help="show every tier: source, path, size, parameters, sha256")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--verify", action="store_true", help="re-hash every local file")
    _with_settings(listing, _models_list)

    serve = commands.add_parser("serve", help="the chat web page and OpenAI-compatible API (default 127.0.0.1:8000)")
    serve.add_argument("--host", default=None, help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default: server.port, 8000)")
    _with_settings(serve, _serve)
    mcp = commands.add_parser("mcp", help="the assistant as an MCP server for agents (stdio; --http for /mcp)")
    mcp.add_argument("--http", action="store_true",
                     help="serve streamable HTTP at http://HOST:PORT/mcp (with the chat API) instead of stdio")
    mcp.add_argument("--host", default=None, help="with --http: address to bind (default: server.host)")
    mcp.add_argument("--port", type=int, default=None, help="with --http: TCP port (default: server.port)")
    _with_settings(mcp, _mcp)

    ask = commands.add_parser("ask", help="answer one question with the routed assistant; shows route, sources, cost")
    ask.add_argument("question")
    _add_turn_options(ask)
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    _with_settings(ask, _ask)

    chat = commands.add_parser("chat", help="interactive session with the assistant (or one tier with --model)")
    chat.add_argument("--model", default=None, help="talk to one tier directly instead of the routed assistant")
    _add_turn_options(chat)
    chat.add_argument("--max-tokens", type=int, default=512)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--system", default="You are a helpful, concise assistant.", help="system prompt")
    _with_settings(chat, _chat)

    generate = commands.add_parser("generate", help="answer one prompt with one model tier and show its cost")
    generate.add_argument("prompt")
    generate.add_argument("--model", default="small", help="tier alias (default: small)")
    generate.add_argument("--max-tokens", type=int, default=256)
    generate.add_argument("--temperature", type=float, default=0.0)
    generate.add_argument("--json", action="store_true", help="print the completion as JSON")
    _with_settings(generate, _generate)

    index = commands.add_parser("index", help="the document index: add, remove, search, evaluate")
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    add = index_commands.add_parser("add", help="index .txt, .md, .jsonl and .pdf files (directories recursively)")
    add.add_argument("paths", nargs="+", type=Path)
    add.add_argument("--follow-symlinks", action="store_true",
                     help="index the targets of symlinks that lead out of a folder (skipped by default)")
    _with_settings(add, _index_add)
    remove = index_commands.add_parser("remove", help="remove a document and its chunks")
    remove.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    _with_settings(remove, _index_remove)
    info = index_commands.add_parser("info", help="what the index holds and how it was built")
    info.add_argument("--json", action="store_true", help="print JSON")
    _with_settings(info, _index_info)
    search = index_commands.add_parser("search", help="the best passages for a query")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=None, help="passages to return (default: retrieval.k)")
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)
    search.add_argument("--json", action="store_true", help="print JSON")
    _with_settings(search, _index_search)
    build = index_commands.add_parser(
        "build", help="index the knowledge base set by retrieval.knowledge_base (none by default; "
        "--retrieval-knowledge-base squad adds the SQuAD v2.0 dev paragraphs)")
    build.add_argument("--force", action="store_true", help="re-add every paragraph (unchanged ones are skipped)")
    _with_settings(build, _index_build)
    rebuild = index_commands.add_parser("rebuild", help="re-embed every stored chunk with the running embedder")
    _with_settings(rebuild, _index_rebuild)
    evaluate = index_commands.add_parser(
        "evaluate", help="Recall@1/5/20 and latency of the configured retrieval on SQuAD v2.0 dev questions "
        "(in an index of their own paragraphs, not yours)")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate the first N questions only")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    _with_settings(evaluate, _index_evaluate)

    evaluation = commands.add_parser("eval", help="accuracy and cost of the routed system against the large model")
    eval_commands = evaluation.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    datasets = eval_commands.add_parser("datasets", help="list the suites and datasets the eval can load")
    datasets.add_argument("--fetch", action="store_true",
                          help="fetch and verify every dataset file now (from --datasets-dir first, if set)")
    datasets.add_argument("--sources", action="store_true",
                          help="list every dataset file: cache name, sha256 and sources (for offline copies)")
    _with_settings(datasets, _eval_datasets)
    run = eval_commands.add_parser("run", help="run systems on a suite (resumes from the per-item cache)")
    run.add_argument("--suite", default="mixed-test",
                     help="a suite name (see `eval datasets`; tune on mixed-dev, report on mixed-test) or a JSONL file")
    run.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                     help=f"comma-separated, from: {', '.join(ALL_SYSTEMS)} (default: all)")
    run.add_argument("--limit", type=int, default=None, help="a stratified subset of N items")
    run.add_argument("--corpus", type=Path, default=None, help="documents for fact questions (default: the index)")
    run.add_argument("--output", type=Path, default=Path("eval-results"), help="where results and report go")
    _with_settings(run, _eval_run)
    report = eval_commands.add_parser("report", help="re-render report.md and the plots from a results file")
    report.add_argument("location", type=Path, nargs="?", default=Path("eval-results"),
                        help="a results_*.json or the directory holding it (default: eval-results)")
    _with_settings(report, _eval_report)
    headline = eval_commands.add_parser("headline", help="print the README's headline table from results files")
    headline.add_argument("locations", type=Path, nargs="+",
                          help="results_*.json files or the directories holding them, one block of rows each")
    _with_settings(headline, _eval_headline)
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
    _with_settings(calibrate, _eval_calibrate)
    train = eval_commands.add_parser("train-escalation",
                                     help="fit the escalation models on dev results and write their JSON weights")
    train.add_argument("results", type=Path, nargs="+",
                       help="dev results_*.json files or their directories (mixed-dev, facts-dev, unanswerable-dev)")
    train.add_argument("--output", type=Path, default=None,
                       help="where the weights go (default: the escalation_model setting, else the shipped file)")
    train.add_argument("--keep", default="", help=("comma-separated models to keep as they are from the current "
                                                   "weights instead of refitting, e.g. program_large"))
    _with_settings(train, _eval_train_escalation)

    calc = commands.add_parser("calc", help="exact arithmetic with the safe calculator (plain language works too)")
    calc.add_argument("expression", help="e.g. '347 * 29', 'what is 15%% of 240', 'solve 2x + 3 = 7'")
    calc.add_argument("--json", action="store_true", help="print the result as JSON")
    _with_settings(calc, _calc)
    return parser


def _add_turn_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--escalation", choices=["auto", "never", "always"], default=None,
                        help="escalate uncertain turns (auto), never, or always (default: assistant.escalation)")
    parser.add_argument("--thread", default=None, help="conversation thread id (continues its history)")
    parser.add_argument("--threshold", type=float, default=None, help="confidence threshold for this turn")
    parser.add_argument("--cost-cap", type=float, default=None, help="largest cost of a turn, in USD")


def _with_settings(parser: argparse.ArgumentParser, handler: Handler) -> None:
    add_settings_flags(parser)
    parser.set_defaults(handler=handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `assistant` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(args.config, overrides_from_args(args))
        handler: Handler = args.handler
        return handler(args, settings)
    except AssistantError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        extra = OPTIONAL_MODULES.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"error: this command needs {error.name}, from the project's {extra!r} extra\n"
              f"  how to fix: pip install 'small-first-assistant[{extra}]' (or bash scripts/start.sh, which installs "
              f"it)", file=sys.stderr)
        return 2


OPTIONAL_MODULES = {"reasoning_gym": "eval", "matplotlib": "eval", "docx": "eval", "sklearn": "eval"}
"""Modules of the optional extras (pyproject.toml) a command may need, by the extra that installs them."""


# ---- models --------------------------------------------------------------------------------------

def _models_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import gguf_path
    from models.weights import ensure_shipped

    aliases = args.aliases or [alias for alias, spec in settings.models.items() if spec.kind == "shipped"]
    for alias in aliases:
        spec = settings.model_spec(alias)
        if spec.kind == "openai":
            print(f"{alias}: endpoint {spec.source}, nothing to fetch")
            continue
        if args.force and spec.kind == "shipped":
            from models.catalog import shipped_model

            path = ensure_shipped(shipped_model(spec.shipped_name), settings.models_dir, force=True)
        else:
            path = gguf_path(spec, settings, fetch=True)
        print(f"{alias}: {path} verified")
    return 0


def _models_list(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import describe_tier

    tiers = [describe_tier(settings, alias, verify=args.verify) for alias in settings.models]
    if args.json:
        print(json.dumps([tier.to_dict() for tier in tiers], indent=2))
        return 0
    header = f"{'alias':<8} {'kind':<8} {'size':>10} {'params':>8} {'sha256':<8} {'$/1M':>6}  path / detail"
    print(header)
    for tier in tiers:
        size = f"{tier.size / 1e6:.0f} MB" if tier.size else "-"
        params = f"{tier.parameters / 1e6:.0f}M" if tier.parameters else "-"
        verified = "ok" if tier.sha256_verified else "-"
        print(f"{tier.alias:<8} {tier.kind:<8} {size:>10} {params:>8} {verified:<8} "
              f"{tier.price_per_million_tokens:>6.3f}  {tier.path}  [{tier.detail}]")
    return 0


# ---- index ---------------------------------------------------------------------------------------

def _open_index(settings: Settings) -> Any:
    from assistant.core.knowledge_base import open_retriever

    return open_retriever(settings, knowledge_base=False, progress=True)


def _index_add(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.documents import read_paths
    from retrieval.reader import BoundedReader

    reader = BoundedReader(settings.retrieval.parse_timeout_s, settings.retrieval.parse_memory_mb)
    try:
        report = read_paths(args.paths, follow_symlinks=args.follow_symlinks, reader=reader.read)
    finally:
        reader.close()
    for path, reason in report.failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    retriever = _open_index(settings)
    if not report.documents:
        print("no documents found", file=sys.stderr)
        return 1
    added = retriever.add_documents(report.documents)
    for doc_id, held_by, refused in added.conflicts:
        print(f"refused {refused}: the id {doc_id!r} already belongs to {held_by} "
              f"(remove it first: assistant index remove {doc_id!r}, or add the file from a differently named folder)",
              file=sys.stderr)
    print(added.summary())
    return 1 if report.failures or added.conflicts else 0


def _index_remove(args: argparse.Namespace, settings: Settings) -> int:
    retriever = _open_index(settings)
    missing = 0
    for doc_id in args.doc_ids:
        removed = retriever.remove(doc_id)
        if removed:
            print(f"removed {doc_id} ({removed} chunks)")
        else:
            missing += 1
            print(f"no document {doc_id!r} in the index (see `assistant index info --json`)", file=sys.stderr)
    return 1 if missing else 0


def _index_info(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.store import read_manifest

    retriever = _open_index(settings)
    info = retriever.info() | {"manifest": read_manifest(retriever.directory)}
    if args.json:
        info["document_ids"] = sorted(retriever.store.documents())
        print(json.dumps(info, indent=2, default=str))
    else:
        for key in ("directory", "embedder", "index_type", "documents", "chunks", "generation", "faiss_version"):
            print(f"{key:<14} {info[key]}")
    return 0


def _index_search(args: argparse.Namespace, settings: Settings) -> int:
    retriever = _open_index(settings)
    hits = retriever.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], indent=2, ensure_ascii=False))
        return 0
    for rank, hit in enumerate(hits, start=1):
        text = " ".join(hit.text.split())
        print(f"{rank}. [{hit.chunk_id}] {hit.title}  (score {hit.score:.4f})\n   {text[:300]}")
    return 0


def _index_build(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.core.knowledge_base import ensure_knowledge_base

    retriever = _open_index(settings)
    report = ensure_knowledge_base(retriever, settings, progress=True, force=args.force)
    if report is None:
        knowledge_base = settings.retrieval.knowledge_base
        print("no knowledge base is set (retrieval.knowledge_base = none): the index holds your documents only; "
              "add them with `assistant index add PATH`" if knowledge_base == "none"
              else f"the {knowledge_base} knowledge base is already indexed: {retriever.info()['chunks']} chunks")
    else:
        print(report.summary())
    return 0


def _index_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval.embedders import load_embedder
    from retrieval.retriever import Retriever
    from retrieval.store import ChunkStore, read_manifest

    manifest = read_manifest(settings.index_dir())
    if manifest is None:
        print(f"no index in {settings.index_dir()}", file=sys.stderr)
        return 1
    embedder = load_embedder(settings.retrieval.embedder)
    # Read the chunks with the identity they were stored under, then re-embed them with the running embedder.
    stored = ChunkStore.load(settings.index_dir(), manifest["embedder"], manifest["dimension"])
    retriever = Retriever(embedder, stored, settings.index_dir(), settings.retrieval)
    print(f"re-embedded {retriever.rebuild()} chunks with {embedder.id}")
    return 0


def _index_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from eval.retrieval_quality import evaluate_retrieval
    from eval.run import paragraph_settings
    from eval.suites import SQUAD_CORPUS
    from retrieval.squad import load_squad_dev

    squad = load_squad_dev(settings.dataset_store())
    retriever = _open_index(paragraph_settings(settings, squad.paragraphs, SQUAD_CORPUS))
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


# ---- eval ----------------------------------------------------------------------------------------

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
        outcome = run_eval(settings, suite=args.suite, systems=systems, limit=args.limit, output=args.output,
                           corpus=args.corpus, command=command)
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
    from eval.report import latest_results, load_results, write_report

    path = latest_results(args.location)
    for written in write_report(load_results(path), path.parent):
        print(f"wrote {written}")
    return 0


def _eval_headline(args: argparse.Namespace, settings: Settings) -> int:
    from eval.report import load_results, render_headline

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
    from eval.report import latest_results

    output = args.output or settings.assistant.escalation_model or DEFAULT_MODEL_PATH
    current = settings.assistant.escalation_model or DEFAULT_MODEL_PATH
    paths = [latest_results(location) for location in args.results]
    keep = [name.strip() for name in args.keep.split(",") if name.strip()]
    command = " ".join(["assistant eval train-escalation", *(str(path) for path in args.results),
                        *(["--keep", ",".join(keep)] if keep else [])])
    model = train_escalation(paths, output, command=command, keep=keep, kept_from=current)
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


# ---- calculator ----------------------------------------------------------------------------------

def _calc(args: argparse.Namespace, settings: Settings) -> int:
    from tools.calculator import calculate
    from tools.words import extract_expression
    from tools.worker import configure_default_worker

    configure_default_worker(settings.calculator.time_limit_s, settings.calculator.memory_mb)
    result = calculate(extract_expression(args.expression) or args.expression)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif result.expression.startswith("solve "):
        print(f"{result.expression}: {result}")
    else:
        print(f"{result.expression} = {result}")
    return 0


# ---- chat ----------------------------------------------------------------------------------------

def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from models.base import Completion
    from models.registry import load_model

    model = load_model(settings, args.model)
    messages: list[Any] = [{"role": "user", "content": args.prompt}]
    if args.json:
        completion = model.chat(messages, max_tokens=args.max_tokens, temperature=args.temperature)
        print(json.dumps(completion.to_dict(), indent=2))
        return 0
    for item in model.stream(messages, max_tokens=args.max_tokens, temperature=args.temperature):
        if isinstance(item, Completion):
            print(f"\n[{_usage_line(item)}]")
        else:
            print(item.text, end="", flush=True)
    return 0


def _print_answer(answer: Answer) -> None:
    print("\n".join(answer.view().text_lines()))


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from assistant.core.assistant import Assistant
    from assistant.listener import server_config
    from assistant.server import check_bind, create_app

    server = settings.server.model_copy(update={key: value for key, value in
                                                 (("host", args.host), ("port", args.port)) if value is not None})
    check_bind(server)
    assistant = Assistant.from_settings(settings, preload_large=server.preload_large)
    app = create_app(assistant, server, settings.mcp)
    host = f"[{server.host}]" if ":" in server.host else server.host
    mcp = ", MCP: /mcp" if settings.mcp.mount else ""
    print(f"the assistant is ready: open http://{host}:{server.port}/ (API: /v1/chat/completions{mcp})", flush=True)
    uvicorn.Server(server_config(app, server)).run()
    assistant.close()
    return 0


def _mcp(args: argparse.Namespace, settings: Settings) -> int:
    if args.http:
        settings = settings.model_copy(update={"mcp": settings.mcp.model_copy(update={"mount": True})})
        return _serve(args, settings)
    import io
    import os

    from assistant.core.assistant import Assistant
    from assistant.mcp_server import build_mcp

    # stdout carries the protocol: anything else written to it (a library's banner, llama.cpp's log) goes to stderr.
    protocol = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(protocol, "wb", buffering=0), encoding="utf-8", write_through=True)
    assistant = Assistant.from_settings(settings, progress=False, preload_large=settings.server.preload_large)
    try:
        build_mcp(assistant, settings.server, settings.mcp).run("stdio")
    finally:
        assistant.close()
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.core.assistant import Assistant

    assistant = Assistant.from_settings(settings)
    answer = assistant.ask(args.question, args.thread, escalation=args.escalation, threshold=args.threshold,
                           cost_cap_usd=args.cost_cap)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        _print_answer(answer)
    assistant.close()
    return 0


def _assistant_chat(args: argparse.Namespace, settings: Settings) -> int:
    import uuid

    from assistant.core.assistant import Assistant
    from assistant.live import REPLACED_NOTE, LiveText

    print("loading the assistant...", file=sys.stderr)
    assistant = Assistant.from_settings(settings)
    thread = args.thread or uuid.uuid4().hex[:12]
    print(f"thread {thread}; an empty line or Ctrl-D ends the session", file=sys.stderr)
    for question in _typed_questions():
        live = LiveText(hold_documents=True)  # a terminal cannot take text back: documents answers print once final
        working = False  # a word problem's working prints as it is written, the answer on a line after it
        for event in assistant.stream(question, thread, escalation=args.escalation, threshold=args.threshold,
                                      cost_cap_usd=args.cost_cap):
            if event["type"] == "working":
                print(event["text"], end="", flush=True)
                working = True
                continue
            edits = live.feed(event)
            if edits and working:
                print("\n\nanswer: ", end="")
                working = False
            for edit in edits:
                print(edit.text if edit.kind == "append" else f"\n[{REPLACED_NOTE}]\n{edit.text}", end="", flush=True)
            if event["type"] == "escalate":
                print(f"\n[escalating: {event.get('reason', '')}]", flush=True)
            elif event["type"] == "answer":
                print()
                _print_answer_footer(event["answer"])
    assistant.close()
    return 0


def _typed_questions() -> Iterator[str]:
    """Lines typed at a ``> `` prompt until an empty line or end of input."""
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            return
        if not question:
            return
        yield question


def _print_answer_footer(answer: Answer) -> None:
    """What follows a streamed answer: the summary line and the cited passages (the text is on screen already)."""
    print("\n".join(answer.view().footer_lines()))


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from models.base import Completion
    from models.registry import load_model

    if args.model is None:
        return _assistant_chat(args, settings)
    print(f"loading the {args.model} model...", file=sys.stderr)
    model = load_model(settings, args.model)
    messages: list[Any] = [{"role": "system", "content": args.system}]
    print("chat with the model; an empty line or Ctrl-D ends the session", file=sys.stderr)
    for question in _typed_questions():
        messages.append({"role": "user", "content": question})
        reply = ""
        for item in model.stream(messages, max_tokens=args.max_tokens, temperature=args.temperature):
            if isinstance(item, Completion):
                reply = item.text
                print(f"\n[{_usage_line(item)}]")
            else:
                print(item.text, end="", flush=True)
        messages.append({"role": "assistant", "content": reply})
    return 0


def _usage_line(completion: Any) -> str:
    usage = completion.usage
    confidence = min(completion.token_probabilities, default=1.0)
    return (f"{usage.model}: {usage.prompt_tokens}+{usage.completion_tokens} tokens, "
            f"{usage.wall_seconds:.2f} s"
            + (f" ({usage.completion_tokens / usage.wall_seconds:.1f} tok/s)" if usage.wall_seconds > 0 else "")
            + f", {usage.flops:.2e} FLOPs, ${usage.cost_usd:.6f}, "
            f"min token p {confidence:.2f}")


if __name__ == "__main__":
    sys.exit(main())
