"""Opening the configured index, and the default knowledge base: the 2,067 SQuAD v1.1 dev paragraphs."""

from __future__ import annotations

from assistant.settings import Settings
from retrieval.documents import Document
from retrieval.embedders import load_embedder
from retrieval.retriever import AddReport, Retriever
from retrieval.squad import load_squad_dev

SQUAD_PREFIX = "squad-dev/"


def open_retriever(settings: Settings, *, knowledge_base: bool = True, progress: bool = True) -> Retriever:
    """The configured index with its embedder; builds the default knowledge base first if it is missing."""
    embedder = load_embedder(settings.retrieval.embedder)
    retriever = Retriever.open(settings.index_dir(), embedder, settings.retrieval)
    if knowledge_base:
        ensure_knowledge_base(retriever, settings, progress=progress)
    return retriever


def ensure_knowledge_base(retriever: Retriever, settings: Settings, *, progress: bool = True,
                          force: bool = False) -> AddReport | None:
    """Index the SQuAD dev paragraphs unless they are all there (or ``retrieval.knowledge_base`` is none)."""
    if settings.retrieval.knowledge_base == "none":
        return None
    present = {doc_id for doc_id in retriever.store.documents() if doc_id.startswith(SQUAD_PREFIX)}
    if not force and len(present) >= 2067:
        return None
    squad = load_squad_dev(settings.cache_dir, progress=progress)
    documents = [Document(p.doc_id, p.text, p.title, f"SQuAD v1.1 dev: {p.title}") for p in squad.paragraphs]
    return retriever.add_documents(documents, progress=progress)
