"""`.ci/run`: the README's test command, into a fresh, empty cache directory."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_ci_runs_the_readme_test_command_into_a_fresh_empty_cache(tmp_path: Path) -> None:
    """`.ci/run` hands scripts/test.sh an empty ASSISTANT_CACHE_DIR (so weights and datasets are fetched and verified
    afresh: a vanished source fails CI) and removes it afterwards; the README's test command is the one it runs."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text((root / ".ci" / "run").read_text())
    (tmp_path / "scripts").mkdir()
    record = tmp_path / "seen"
    (tmp_path / "scripts" / "test.sh").write_text(
        f'echo "$ASSISTANT_CACHE_DIR $(ls -A "$ASSISTANT_CACHE_DIR" | wc -l)" > {record}\n')
    completed = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, check=False,
                               env={"PATH": "/usr/bin:/bin", "ASSISTANT_CACHE_DIR": str(tmp_path / "warm")})
    assert completed.returncode == 0, completed.stderr
    cache, entries = record.read_text().split()
    assert cache != str(tmp_path / "warm") and entries == "0" and not Path(cache).exists()
    assert "bash scripts/test.sh" in (root / "README.md").read_text()
    install = (root / "scripts" / "install.sh").read_text()
    assert "assistant eval datasets --fetch" in install and "assistant models fetch" in install
