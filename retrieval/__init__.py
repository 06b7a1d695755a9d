"""Retrieval: chunking, embeddings and the FAISS index (issue #3; not implemented yet)."""
