"""The installed `assistant calc` command in its own process: plain language, JSON, attacks, limits from settings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ASSISTANT = str(Path(sys.executable).with_name("assistant"))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASSISTANT, "calc", *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 347 times 29?", "347 * 29 = 10063"),
        ("what's 15% of 240", "15 / 100 * 240 = 36"),
        ("square root of 144", "sqrt(144) = 12"),
        ("7 plus 8 divided by 2", "7 + 8 / 2 = 11"),
        ("solve 2x + 3 = 7", "solve 2 * x + 3 = 7: x = 2"),
    ],
)
def test_plain_language_is_answered_exactly(question: str, answer: str) -> None:
    completed = _run(question)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == answer


def test_json_output() -> None:
    completed = _run("1/3", "--json")
    data = json.loads(completed.stdout)
    assert data["exact"] == "1/3" and data["decimal"] == "0.333333333333333" and data["evaluated_in"] == "process"


def test_attacks_fail_safely_in_the_real_command(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    started = time.monotonic()
    for attack in (f"__import__('os').system('touch {sentinel}')", "9**9**9", "factorial(10**9)"):
        completed = _run(attack)
        assert completed.returncode == 2 and completed.stderr.startswith("error: ")
    assert not sentinel.exists()
    assert time.monotonic() - started < 30


def test_time_limit_comes_from_settings() -> None:
    import os

    env = dict(os.environ, ASSISTANT_CALCULATOR__TIME_LIMIT_S="0.5")
    started = time.monotonic()
    completed = _run("solve x^7 - 3*x^2 + x - 5 = 0", env=env)
    elapsed = time.monotonic() - started
    assert completed.returncode == 2
    assert "0.5 s limit" in completed.stderr
    assert elapsed < 15
