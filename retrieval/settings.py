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
