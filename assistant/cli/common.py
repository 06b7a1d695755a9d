"""What the command-line areas share: the handler type, settings flags on every command, the turn options."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

from assistant.core.settings import Settings
from assistant.flags import add_settings_flags

Handler = Callable[[argparse.Namespace, Settings], int]


def add_turn_options(parser: argparse.ArgumentParser) -> None:
    """--escalation, --thread, --threshold and --cost-cap: the knobs of one turn."""
    parser.add_argument("--escalation", choices=["auto", "never", "always"], default=None,
                        help="escalate uncertain turns (auto), never, or always (default: assistant.escalation)")
    parser.add_argument("--thread", default=None, help="conversation thread id (continues its history)")
    parser.add_argument("--threshold", type=float, default=None, help="confidence threshold for this turn")
    parser.add_argument("--cost-cap", type=float, default=None, help="largest cost of a turn, in USD")


def with_settings(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Add the settings flags to ``parser`` and make ``handler`` its command."""
    add_settings_flags(parser)
    parser.set_defaults(handler=handler)


def typed_questions() -> Iterator[str]:
    """Lines typed at a ``> `` prompt until an empty line or end of input."""
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            return
        if not question:
            return
        yield question
