"""What the command-line areas share: the handler type, settings flags on every command, the turn options."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence

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


@contextlib.contextmanager
def local_tiers(settings: Settings, aliases: Sequence[str] = ("small", "large"), *,
                progress: bool = True, first_port: int | None = None) -> Iterator[Settings]:
    """``settings`` as they are; or, with ``llama.engine = "llama-server"``, each local tier among ``aliases`` on its
    own supervised llama-server (stopped when the block ends; on ports from ``first_port`` when given) and the
    settings reaching it as an endpoint."""
    if settings.llama.engine != "llama-server":
        yield settings
        return
    from models.llama_server import describe, tier_servers

    served = tier_servers(settings, list(aliases), settings.cache_dir / "logs",
                          binary=settings.llama.server_binary, slots=settings.llama.server_slots, progress=progress,
                          first_port=first_port)
    print(f"starting llama-server for {', '.join(served.servers.servers) or 'no local tier'}...", file=sys.stderr)
    served.servers.start()
    try:
        for line in describe(served.servers):
            print(line, file=sys.stderr)
        yield settings.model_copy(update={"models": {**settings.models, **served.endpoint_specs(settings.models)}})
    finally:
        served.servers.close()
