"""The project as a package: a wheel installed non-editable into a fresh virtualenv carries its data (the escalation
weights, the page) and answers with the shipped weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
import assistant
import assistant.core.escalation as escalation
from assistant.api import Assistant

weights = escalation.load_escalation_model(None)
answer = Assistant.from_settings(progress=False).ask(
    "Ana has 12 apples. She gives 5 apples to Ben and then buys 7 more apples. How many apples does Ana have now?")
print(json.dumps({"package": assistant.__file__, "weights": str(escalation.DEFAULT_MODEL_PATH),
                  "models": sorted(weights.models), "text": answer.text, "signals": answer.signals}))
"""


@pytest.mark.slow
def test_a_non_editable_install_answers_with_the_shipped_escalation_weights(tmp_path: Path) -> None:
    source = tmp_path / "source"  # built from a copy: a build writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "docs", "bench", "build",
                                                                "*.egg-info", "__pycache__", ".*_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, timeout=600)
    wheel = next(wheels.glob("small_first_assistant-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"assistant/core/escalation_model.json", "assistant/static/index.html", "assistant/py.typed"} <= names
    assert not any(name.startswith("tests/") for name in names)

    # A fresh virtualenv: the project from the wheel; its dependencies are this environment's (a .pth file names
    # them), so the test installs nothing from the network.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=300)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, timeout=900,
                          env=environment, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["package"].startswith(site) and probe["weights"].startswith(site)  # the installed copy, not ROOT
    assert {"fact", "answerable", "working_large"} <= set(probe["models"])
    # the word problem's confidence is the shipped working_large model's probability, not the untrained constant
    assert probe["text"] == "14 apples" and "p_correct" in probe["signals"], probe
