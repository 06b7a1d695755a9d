"""The documents rules on dev data: when a question is *about* the documents (refuse, never answer from general
knowledge) and when a chat-sounding question goes to the documents (docs/BENCHMARKS.md, "Your documents").

Usage: python bench/bench_documents_rules.py [--squad 300]

- about the documents: docs-dev's unanswered questions (all about their documents) against SQuAD v2.0 dev questions
  of `routing-dev` asked over the docs-dev documents (public-world questions), for several coverage/cosine rules;
- the route: `routing-dev`'s chat prompts over the docs-dev documents and over the SQuAD corpus, and docs-dev's own
  questions, for several coverage/cosine rules;
- word problems: `routing-dev`'s and `mixed-dev`'s word problems over the same two corpora (a question about a table
  cell, with a date in it, reads like a word problem to the router).
Dev suites only: nothing here reads a test item.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from assistant.core.features import matches_documents, speaks_of
from assistant.core.knowledge_base import open_retriever
from assistant.core.settings import Settings
from eval.datasets import EvalItem, expected_route
from eval.run import load_suite, scoped_settings, squad_index_settings
from retrieval.retriever import Retriever

COVERAGES = (0.4, 0.5, 0.6)
COSINES = (0.35, 0.4, 0.42, 0.5, 1.01)


def _sources(retriever: Retriever, items: Sequence[EvalItem]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each item's question and its top five passages, as the graph sees them."""
    return [(item.question, [hit.to_dict() for hit in retriever.search(item.question, 5)]) for item in items]


def _count(rule: Callable[..., bool], turns: list[tuple[str, list[dict[str, Any]]]], coverage: float,
           cosine: float) -> str:
    return f"{sum(1 for question, sources in turns if rule(question, sources, coverage, cosine))}/{len(turns)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=int, default=300, help="SQuAD dev questions used as public-world questions")
    args = parser.parse_args()
    settings = Settings()
    docs = load_suite("docs-dev", settings, progress=False)
    documents = open_retriever(scoped_settings(settings, list(docs.documents or ()), "docs-dev", progress=False),
                               knowledge_base=False, progress=False)
    squad = open_retriever(squad_index_settings(settings, progress=False), knowledge_base=False, progress=False)
    routing = load_suite("routing-dev", settings, progress=False).items
    public = [item for item in routing if expected_route(item) == "FACT"][: args.squad]
    chat = [item for item in routing if expected_route(item) == "CHAT"]
    unanswered = [item for item in docs.items if not item.answers]
    mixed = load_suite("mixed-dev", settings, progress=False).items
    problems = [item for item in routing + mixed if item.kind == "word_problem"]

    mine, world = _sources(documents, unanswered), _sources(documents, public)
    print(f"About the documents (assistant.core.features.speaks_of): {len(unanswered)} docs-dev unanswered vs "
          f"{len(world)} SQuAD dev questions over the docs-dev documents")
    print("| coverage >= | or cosine >= | docs-dev unanswered | SQuAD questions |\n|---|---|---|---|")
    for coverage in COVERAGES:
        for cosine in COSINES:
            print(f"| {coverage} | {cosine} | {_count(speaks_of, mine, coverage, cosine)} | "
                  f"{_count(speaks_of, world, coverage, cosine)} |")

    questions = _sources(documents, docs.items)
    print(f"\nChat to documents (assistant.core.features.matches_documents): {len(chat)} routing-dev chat prompts, and "
          "the docs-dev questions")
    _moved_table(("chat over docs-dev", "chat over SQuAD"), _sources(documents, chat), _sources(squad, chat), questions)
    print(f"\nWord problems to documents (the same rule): {len(problems)} routing-dev and mixed-dev word problems")
    _moved_table(("word problems over docs-dev", "over SQuAD"), _sources(documents, problems),
                 _sources(squad, problems), questions)


def _moved_table(names: tuple[str, str], over_docs: list[tuple[str, list[dict[str, Any]]]],
                 over_squad: list[tuple[str, list[dict[str, Any]]]],
                 questions: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """How many turns the route rule moves to the documents, for each coverage and cosine."""
    print(f"| coverage >= | and cosine >= | {names[0]} | {names[1]} | docs-dev questions |\n|---|---|---|---|---|")
    for coverage in COVERAGES:
        for cosine in (0.0, 0.4, 0.5):
            print(f"| {coverage} | {cosine} | {_count(matches_documents, over_docs, coverage, cosine)} | "
                  f"{_count(matches_documents, over_squad, coverage, cosine)} | "
                  f"{_count(matches_documents, questions, coverage, cosine)} |")


if __name__ == "__main__":
    main()
