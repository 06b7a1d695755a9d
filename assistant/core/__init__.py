"""The answering core: routing, the graph, the escalation decision, retrieval's evidence, prompts, tools' use.

It knows nothing of HTTP, MCP or the command line (the import contract in pyproject.toml holds it to that); the
interfaces in ``assistant/`` sit above it. The evaluation hashes this package's code into its cache key.
"""
