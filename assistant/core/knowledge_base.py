"""Opening the configured index, and the optional demonstration knowledge base (the SQuAD v2.0 dev paragraphs).

The default is no knowledge base: the index holds the user's own documents and nothing else, so an answer "from
your documents" is always from theirs.
"""

from __future__ import annotations

import sys

from assistant.core.settings import Settings
from common.sources import DatasetError
from retrieval.documents import Document
from retrieval.embedders import load_embedder
from retrieval.retriever import AddReport, Retriever
from retrieval.squad import load_squad_dev

SQUAD_PREFIX = "squad-dev/"
EMPTY_INDEX_HINT = ("the document index is empty: add your documents with `assistant index add PATH`, the page's "
                    "Documents panel or POST /v1/documents")


def open_retriever(settings: Settings, *, knowledge_base: bool = True, progress: bool = True) -> Retriever:
    """The configured index with its embedder; indexes the configured knowledge base first if one is set and
    missing. A knowledge base that cannot be had is not fatal: one warning, and the index stays as it is."""
    embedder = load_embedder(settings.retrieval.embedder)
    retriever = Retriever.open(settings.index_dir(), embedder, settings.retrieval)
    if knowledge_base:
        try:
            ensure_knowledge_base(retriever, settings, progress=progress)
        except DatasetError as error:
            print(f"warning: the knowledge base {settings.retrieval.knowledge_base!r} was not indexed "
                  f"({error.message}); going on without it", file=sys.stderr)
    return retriever


def ensure_knowledge_base(retriever: Retriever, settings: Settings, *, progress: bool = True,
                          force: bool = False) -> AddReport | None:
    """Index the SQuAD v2.0 dev paragraphs when ``retrieval.knowledge_base`` is ``squad`` and they are not all
    there; None when there is nothing to do."""
    if settings.retrieval.knowledge_base == "none":
        return None
    squad = load_squad_dev(settings.dataset_store(), progress=progress)
    present = {doc_id for doc_id in retriever.store.documents() if doc_id.startswith(SQUAD_PREFIX)}
    if not force and present >= {paragraph.doc_id for paragraph in squad.paragraphs}:
        return None
    documents = [Document(p.doc_id, p.text, p.title, f"SQuAD v2.0 dev: {p.title}") for p in squad.paragraphs]
    return retriever.add_documents(documents, progress=progress)
