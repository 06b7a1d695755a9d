"""Retrieval quality and speed on SQuAD dev: Recall@k of the paragraph holding the answer, latency, throughput."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from common.stats import latency_summary
from retrieval.retriever import Retriever, SearchMode
from retrieval.squad import SquadQuestion

MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")
KS = (1, 5, 20)
CANDIDATES = 100


def _first_documents(doc_ids: Sequence[str], limit: int) -> list[str]:
    return list(dict.fromkeys(doc_ids))[:limit]


def measure_indexing(retriever: Retriever, sample: int = 128) -> float:
    """Chunks embedded per second, on a sample of the stored chunks."""
    records, _ = retriever.store.vectors_in_order()
    texts = [record.text for record in records[:sample]]
    if not texts:
        return 0.0
    started = time.perf_counter()
    retriever.embedder.embed_passages(texts)
    return len(texts) / (time.perf_counter() - started)


def evaluate_retrieval(retriever: Retriever, questions: Sequence[SquadQuestion], *,
                       progress: bool = True) -> dict[str, Any]:
    """Recall@1/5/20 per mode (documents ranked by their best chunk) and query latency per mode.

    Each question's dense and BM25 candidate lists are computed once and timed; hybrid latency is dense + BM25 +
    fusion, which is exactly the work :meth:`Retriever.search` does in hybrid mode.
    """
    retriever.bm25_candidates("warm up", 1)
    retriever.dense_candidates("warm up", 1)
    hits = {mode: dict.fromkeys(KS, 0) for mode in MODES}
    latency: dict[str, list[float]] = {mode: [] for mode in MODES}
    embedding: list[float] = []
    for question in tqdm(questions, desc="evaluating retrieval", unit="question", disable=not progress):
        started = time.perf_counter()
        vector = retriever.embedder.embed_queries([question.question])[0]
        embedded = time.perf_counter()
        dense = retriever.store.search(vector, CANDIDATES)
        dense_done = time.perf_counter()
        lexical = retriever.bm25_candidates(question.question, CANDIDATES)
        lexical_done = time.perf_counter()
        rankings: dict[SearchMode, list[str]] = {}
        for mode in MODES:
            fuse_started = time.perf_counter()
            fused = retriever.fuse(dense, lexical, CANDIDATES, mode)
            fuse_seconds = time.perf_counter() - fuse_started
            rankings[mode] = _first_documents([hit.doc_id for hit in fused], max(KS))
            if mode == "hybrid":
                latency[mode].append((lexical_done - started + fuse_seconds) * 1000)
        embedding.append((embedded - started) * 1000)
        latency["dense"].append((dense_done - started) * 1000)
        latency["bm25"].append((lexical_done - dense_done) * 1000)
        for mode, documents in rankings.items():
            for k in KS:
                hits[mode][k] += question.doc_id in documents[:k]
    count = max(len(questions), 1)
    return {
        "questions": len(questions),
        "documents": len(retriever.store.documents()),
        "chunks": len(retriever.store),
        "embedder": retriever.embedder.id,
        "recall": {mode: {f"@{k}": round(hits[mode][k] / count, 4) for k in KS} for mode in MODES},
        "latency_ms": {mode: latency_summary(latency[mode]) for mode in MODES if latency[mode]},
        "query_embedding_ms": latency_summary(embedding) if embedding else {},
        "indexing_chunks_per_s": round(measure_indexing(retriever), 1),
    }
