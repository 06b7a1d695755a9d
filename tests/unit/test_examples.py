"""The examples, without a server: one line saying what to start, not a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_langgraph_agent_says_in_one_line_that_no_server_answers() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    completed = subprocess.run([sys.executable, "-W", "ignore", str(EXAMPLES / "langgraph_agent.py"), "--url", url,
                                "What is 2+2?"], capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 2 and completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "assistant serve" in lines[0] and "Traceback" not in lines[0]
