from __future__ import annotations

import argparse
import json

import pytest

from assistant.cli import build_parser, main


def test_models_list_json_shows_every_tier_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    tiers = {tier["alias"]: tier for tier in json.loads(capsys.readouterr().out)}
    assert set(tiers) == {"small", "large", "tiny"}
    assert all(not tier["sha256_verified"] for tier in tiers.values())
    assert "assistant models fetch" in tiers["small"]["detail"]


def test_models_list_shows_an_endpoint_tier(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--large", "http://127.0.0.1:9/v1"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("large"))
    assert "openai" in line
    assert "http://127.0.0.1:9/v1" in line


def test_missing_model_without_fetch_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "hi", "--model", "tiny", "--no-auto-fetch"]) == 2
    error = capsys.readouterr().err
    assert "is missing" in error
    assert "how to fix: run `assistant models fetch`" in error


def test_unknown_tier_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "hi", "--model", "medium"]) == 2
    assert "no model tier named 'medium'" in capsys.readouterr().err


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found.extend(_subparsers(child))
    return found


def test_every_command_prints_its_help() -> None:
    """argparse formats help with %: a setting described with a literal percent sign once broke every --help."""
    parsers = _subparsers(build_parser())
    assert len(parsers) > 20
    for parser in parsers:
        assert parser.format_help().startswith("usage:")


def test_an_eval_command_without_the_eval_extra_says_which_extra(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The eval's dependencies are an extra now: without it, a command says what to install, not a traceback."""
    import eval.run

    def missing(*args: object, **kwargs: object) -> None:
        import sklearn.linear_model  # noqa: F401  (None in sys.modules: as if not installed)

    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)
    monkeypatch.setattr(eval.run, "run_eval", missing)
    assert main(["eval", "run", "--suite", "mixed-dev", "--limit", "1"]) == 2
    error = capsys.readouterr().err
    assert "needs sklearn" in error and "pip install 'small-first-assistant[eval]'" in error
