"""Retrieval: SQuAD-format corpora, document loading, chunking, embedders, a FAISS + BM25 hybrid index on disk."""
