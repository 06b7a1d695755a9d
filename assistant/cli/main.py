"""The `assistant` command line: the parser over every area's commands, and the entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from assistant.cli import answering, evaluation, index, models
from assistant.cli.common import Handler
from assistant.core.errors import AssistantError
from assistant.core.settings import Settings
from assistant.flags import overrides_from_args


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand and the generated settings flags."""
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="A small-model-first local assistant. Settings: defaults < TOML < ASSISTANT_* env < flags.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models.add_commands(commands)
    answering.add_commands(commands)
    evaluation.add_commands(commands, index.add_commands(commands))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `assistant` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(args.config, overrides_from_args(args))
        handler: Handler = args.handler
        return handler(args, settings)
    except AssistantError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        extra = OPTIONAL_MODULES.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"error: this command needs {error.name}, from the project's {extra!r} extra\n"
              f"  how to fix: pip install 'small-first-assistant[{extra}]' (or bash scripts/start.sh, which installs "
              f"it)", file=sys.stderr)
        return 2


OPTIONAL_MODULES = {"reasoning_gym": "eval", "matplotlib": "eval", "docx": "eval", "sklearn": "eval"}
"""Modules of the optional extras (pyproject.toml) a command may need, by the extra that installs them."""
