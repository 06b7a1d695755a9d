"""The retrieval layer's settings: chunking, embedding, indexing and search."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RetrievalSettings(BaseModel):
    """How documents are chunked, embedded, indexed and searched."""

    model_config = ConfigDict(extra="forbid")

    embedder: str = Field("minilm", description="Embedder: minilm, e5-small-q4 or fake (tests).")
    index_name: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$", description="Index under cache_dir/indexes.")
    index_dir: Path | None = Field(None, description="Explicit index directory (overrides index_name).")
    index_type: Literal["flat", "hnsw"] = Field("flat", description="flat (exact) or hnsw (approximate).")
    mode: Literal["hybrid", "dense", "bm25"] = Field("hybrid", description="Default search mode.")
    k: int = Field(5, ge=1, le=100, description="Passages returned by a search.")
    candidates: int = Field(50, ge=1, le=1000, description="Candidates per retriever before fusion.")
    rrf_k: int = Field(5, ge=1, le=1000, description="Reciprocal-rank-fusion constant (5 measured best on SQuAD).")
    chunk_chars: int = Field(1000, ge=100, le=20000, description="Largest chunk, in characters.")
    chunk_overlap_chars: int = Field(150, ge=0, le=5000, description="Overlap between consecutive chunks.")
    knowledge_base: Literal["none", "squad"] = Field(
        "none", description="A corpus indexed beside your documents on start: none (the default: only your "
        "documents) or squad (the 1,204 SQuAD v2.0 dev Wikipedia paragraphs, a demonstration).")
    faiss_threads: int = Field(1, ge=1, le=256, description="OpenMP threads for FAISS queries.")
    parse_timeout_s: float = Field(60.0, gt=0, le=3600, description=(
        "Longest one file may take to be read (PDF, Word, HTML...): its parser runs in a child process that is "
        "killed when the time passes, and the file is refused."))
    parse_memory_mb: int = Field(2048, ge=256, le=65536, description=(
        "Address-space cap of the child process that reads files; a file that needs more is refused."))
    follow_interval_s: float = Field(1.0, ge=0, le=3600, description=(
        "How often a running server checks whether another process (assistant index add) saved a newer index "
        "generation, and loads it (0: before every search)."))
