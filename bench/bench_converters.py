"""Document converters on the documents suite's files: time and structure kept (headings, code fences, table rows,
list items) for markitdown and, when it is importable, docling (docs/BENCHMARKS.md, "Your documents").

Usage: python bench/bench_converters.py [--docling-path DIR]

docling is not a dependency (6.2 GB with its own torch); to compare, install it into a scratch folder with
``pip install --target DIR docling==2.143.0`` and pass ``--docling-path DIR``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from assistant.core.settings import Settings
from eval.documents import DOCUMENTS, document_paths

FORMATS = (".html", ".docx", ".xlsx", ".csv", ".md")


def structure(markdown: str) -> str:
    """Headings / code fences / table rows / list items in a markdown text."""
    counts = [len(re.findall(pattern, markdown, re.MULTILINE))
              for pattern in (r"^#{1,6} ", r"^\s*```", r"^\s*\|", r"^\s*(?:[-*+]|\d+[.)]) ")]
    return " / ".join(str(count) for count in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docling-path", type=Path, default=None)
    args = parser.parse_args()
    paths = [path for path in document_paths(Settings().dataset_store(), DOCUMENTS, progress=False).values()
             if path.suffix in FORMATS and path.suffix != ".md"]
    from markitdown import MarkItDown

    converters = {"markitdown": lambda path: MarkItDown(enable_plugins=False).convert_local(str(path)).markdown}
    if args.docling_path is not None:
        sys.path.insert(0, str(args.docling_path))
        started = time.perf_counter()
        from docling.document_converter import DocumentConverter

        docling = DocumentConverter()
        print(f"docling import and start: {time.perf_counter() - started:.2f} s")
        converters["docling"] = lambda path: docling.convert(str(path)).document.export_to_markdown()
    print("| file | converter | seconds | characters | headings / fences / table rows / list items |\n"
          "|---|---|---|---|---|")
    for path in sorted(paths):
        for name, convert in converters.items():
            started = time.perf_counter()
            try:
                markdown = convert(path)
            except Exception as error:  # a converter that cannot read a format is a finding, not a crash
                print(f"| {path.name} | {name} | - | {type(error).__name__} | - |")
                continue
            print(f"| {path.name} | {name} | {time.perf_counter() - started:.2f} | {len(markdown)} | "
                  f"{structure(markdown)} |")


if __name__ == "__main__":
    main()
