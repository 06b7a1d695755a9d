"""The `assistant` command line, one module per area (models, answering, index, evaluation)."""

from assistant.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
