"""The examples, without a server: one line saying what to start, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.waiting import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_langgraph_agent_says_in_one_line_that_no_server_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    completed = subprocess.run([sys.executable, "-W", "ignore", str(EXAMPLES / "langgraph_agent.py"), "--url", url,
                                "What is 2+2?"], capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 2 and completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "assistant serve" in lines[0] and "Traceback" not in lines[0]
