"""`assistant index ...`: add, remove, search, build and rebuild the document index."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from assistant.cli.common import with_settings
from assistant.core.settings import Settings


def add_commands(commands: Any) -> Any:
    """Register this area's commands on the top-level subparsers; returns the index's own subparsers."""
    index = commands.add_parser("index", help="the document index: add, remove, search, evaluate")
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    add = index_commands.add_parser("add", help="index .txt, .md, .jsonl and .pdf files (directories recursively)")
    add.add_argument("paths", nargs="+", type=Path)
    add.add_argument("--follow-symlinks", action="store_true",
                     help="index the targets of symlinks that lead out of a folder (skipped by default)")
    with_settings(add, _index_add)
    remove = index_commands.add_parser("remove", help="remove a document and its chunks")
    remove.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    with_settings(remove, _index_remove)
    info = index_commands.add_parser("info", help="what the index holds and how it was built")
    info.add_argument("--json", action="store_true", help="print JSON")
    with_settings(info, _index_info)
    search = index_commands.add_parser("search", help="the best passages for a query")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=None, help="passages to return (default: retrieval.k)")
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)
    search.add_argument("--json", action="store_true", help="print JSON")
    with_settings(search, _index_search)
    build = index_commands.add_parser(
        "build", help="index the knowledge base set by retrieval.knowledge_base (none by default; "
        "--retrieval-knowledge-base squad adds the SQuAD v2.0 dev paragraphs)")
    build.add_argument("--force", action="store_true", help="re-add every paragraph (unchanged ones are skipped)")
    with_settings(build, _index_build)
    rebuild = index_commands.add_parser("rebuild", help="re-embed every stored chunk with the running embedder")
    with_settings(rebuild, _index_rebuild)
    return index_commands


def open_index(settings: Settings) -> Any:
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
    retriever = open_index(settings)
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
    retriever = open_index(settings)
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

    retriever = open_index(settings)
    info = retriever.info() | {"manifest": read_manifest(retriever.directory)}
    if args.json:
        info["document_ids"] = sorted(retriever.store.documents())
        print(json.dumps(info, indent=2, default=str))
    else:
        for key in ("directory", "embedder", "index_type", "documents", "chunks", "generation", "faiss_version"):
            print(f"{key:<14} {info[key]}")
    return 0


def _index_search(args: argparse.Namespace, settings: Settings) -> int:
    retriever = open_index(settings)
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

    retriever = open_index(settings)
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
