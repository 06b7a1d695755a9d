"""Write a run's report into a directory: the results file, report.md and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.plots import render_plots
from eval.render import render_markdown
from eval.results import raw_results


def write_report(results: dict[str, Any], directory: Path, *, results_name: str | None = None) -> list[Path]:
    """Write ``results_<timestamp>.json`` (unless re-rendering), ``report.md`` and the PNG into ``directory``."""
    from common.files import atomic_output

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if results_name is not None:
        path = directory / results_name
        with atomic_output(path) as handle:
            handle.write(json.dumps(raw_results(results), separators=(",", ":"), default=str).encode())
        written.append(path)
    with atomic_output(directory / "report.md") as handle:
        handle.write(render_markdown(results).encode())
    written.append(directory / "report.md")
    written += render_plots(results, directory)
    return written
