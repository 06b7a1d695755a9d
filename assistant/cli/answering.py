"""`assistant serve`, `mcp`, `ask`, `chat` and `calc`: the assistant answering, through each way people reach it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from assistant.cli.common import add_turn_options, local_tiers, typed_questions, with_settings
from assistant.cli.models import tier_chat
from assistant.core.settings import Settings

if TYPE_CHECKING:
    from assistant.core.answer import Answer


def add_commands(commands: Any) -> None:
    """Register this area's commands on the top-level subparsers."""
    serve = commands.add_parser("serve", help="the chat web page and OpenAI-compatible API (default 127.0.0.1:8000)")
    serve.add_argument("--host", default=None, help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default: server.port, 8000)")
    with_settings(serve, _serve)
    mcp = commands.add_parser("mcp", help="the assistant as an MCP server for agents (stdio; --http for /mcp)")
    mcp.add_argument("--http", action="store_true",
                     help="serve streamable HTTP at http://HOST:PORT/mcp (with the chat API) instead of stdio")
    mcp.add_argument("--host", default=None, help="with --http: address to bind (default: server.host)")
    mcp.add_argument("--port", type=int, default=None, help="with --http: TCP port (default: server.port)")
    with_settings(mcp, _mcp)

    ask = commands.add_parser("ask", help="answer one question with the routed assistant; shows route, sources, cost")
    ask.add_argument("question")
    add_turn_options(ask)
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    with_settings(ask, _ask)

    chat = commands.add_parser("chat", help="interactive session with the assistant (or one tier with --model)")
    chat.add_argument("--model", default=None, help="talk to one tier directly instead of the routed assistant")
    add_turn_options(chat)
    chat.add_argument("--max-tokens", type=int, default=512)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--system", default="You are a helpful, concise assistant.", help="system prompt")
    with_settings(chat, _chat)

    calc = commands.add_parser("calc", help="exact arithmetic with the safe calculator (plain language works too)")
    calc.add_argument("expression", help="e.g. '347 * 29', 'what is 15%% of 240', 'solve 2x + 3 = 7'")
    calc.add_argument("--json", action="store_true", help="print the result as JSON")
    with_settings(calc, _calc)


def _print_answer(answer: Answer) -> None:
    print("\n".join(answer.view().text_lines()))


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from assistant.core.assistant import Assistant
    from assistant.listener import server_config
    from assistant.server import check_bind, create_app

    server = settings.server.model_copy(update={key: value for key, value in
                                                 (("host", args.host), ("port", args.port)) if value is not None})
    check_bind(server)
    with local_tiers(settings) as served:
        assistant = Assistant.from_settings(served, preload_large=server.preload_large)
        app = create_app(assistant, server, served.mcp)
        host = f"[{server.host}]" if ":" in server.host else server.host
        mcp = ", MCP: /mcp" if served.mcp.mount else ""
        print(f"threads: {assistant.storage.description}", file=sys.stderr)
        print(f"the assistant is ready: open http://{host}:{server.port}/ (API: /v1/chat/completions{mcp})",
              flush=True)
        uvicorn.Server(server_config(app, server)).run()
        assistant.close()
    return 0


def _mcp(args: argparse.Namespace, settings: Settings) -> int:
    if args.http:
        settings = settings.model_copy(update={"mcp": settings.mcp.model_copy(update={"mount": True})})
        return _serve(args, settings)
    import io
    import os

    from assistant.core.assistant import Assistant
    from assistant.mcp_server import build_mcp

    # stdout carries the protocol: anything else written to it (a library's banner, llama.cpp's log) goes to stderr.
    protocol = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(protocol, "wb", buffering=0), encoding="utf-8", write_through=True)
    assistant = Assistant.from_settings(settings, progress=False, preload_large=settings.server.preload_large)
    try:
        build_mcp(assistant, settings.server, settings.mcp).run("stdio")
    finally:
        assistant.close()
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.core.assistant import Assistant

    assistant = Assistant.from_settings(settings)
    answer = assistant.ask(args.question, args.thread, escalation=args.escalation, threshold=args.threshold,
                           cost_cap_usd=args.cost_cap)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        _print_answer(answer)
    assistant.close()
    return 0


def _assistant_chat(args: argparse.Namespace, settings: Settings) -> int:
    import uuid

    from assistant.core.assistant import Assistant
    from assistant.live import REPLACED_NOTE, LiveText

    print("loading the assistant...", file=sys.stderr)
    assistant = Assistant.from_settings(settings)
    thread = args.thread or uuid.uuid4().hex[:12]
    print(f"thread {thread}; an empty line or Ctrl-D ends the session", file=sys.stderr)
    for question in typed_questions():
        live = LiveText(hold_documents=True)  # a terminal cannot take text back: documents answers print once final
        working = False  # a word problem's working prints as it is written, the answer on a line after it
        for event in assistant.stream(question, thread, escalation=args.escalation, threshold=args.threshold,
                                      cost_cap_usd=args.cost_cap):
            if event["type"] == "working":
                print(event["text"], end="", flush=True)
                working = True
                continue
            edits = live.feed(event)
            if edits and working:
                print("\n\nanswer: ", end="")
                working = False
            for edit in edits:
                print(edit.text if edit.kind == "append" else f"\n[{REPLACED_NOTE}]\n{edit.text}", end="", flush=True)
            if event["type"] == "escalate":
                print(f"\n[escalating: {event.get('reason', '')}]", flush=True)
            elif event["type"] == "answer":
                print()
                _print_answer_footer(event["answer"])
    assistant.close()
    return 0


def _print_answer_footer(answer: Answer) -> None:
    """What follows a streamed answer: the summary line and the cited passages (the text is on screen already)."""
    print("\n".join(answer.view().footer_lines()))


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    """The routed assistant's session, or one tier's with --model."""
    if args.model is not None:
        return tier_chat(args, settings)
    return _assistant_chat(args, settings)


def _calc(args: argparse.Namespace, settings: Settings) -> int:
    from tools.calculator import calculate
    from tools.words import extract_expression
    from tools.worker import configure_default_worker

    configure_default_worker(settings.calculator.time_limit_s, settings.calculator.memory_mb)
    result = calculate(extract_expression(args.expression) or args.expression)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif result.expression.startswith("solve "):
        print(f"{result.expression}: {result}")
    else:
        print(f"{result.expression} = {result}")
    return 0
