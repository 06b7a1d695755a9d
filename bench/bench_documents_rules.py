"""The documents rules on dev data: when a question is *about* the documents (refuse, never answer from general
knowledge) and when a chat-sounding question goes to the documents (docs/BENCHMARKS.md, "Your documents").

Usage: python bench/bench_documents_rules.py [--squad 300]

- about the documents: docs-dev's unanswered questions (all about their documents) against SQuAD v2.0 dev questions
  of `routing-dev` asked over the docs-dev documents (public-world questions), for several coverage/cosine rules;
- the route: `routing-dev`'s chat prompts over the docs-dev documents and over the SQuAD corpus, and docs-dev's own
  questions, for several coverage/cosine rules.
Dev suites only: nothing here reads a test item.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from assistant.features import documents_coverage
from assistant.knowledge_base import open_retriever
from assistant.settings import Settings
from eval.datasets import EvalItem, expected_route
from eval.run import load_suite, scoped_settings, squad_index_settings
from retrieval.retriever import Retriever

COVERAGES = (0.4, 0.5, 0.6)
COSINES = (0.35, 0.4, 0.42, 0.5, 1.01)


def _signals(retriever: Retriever, items: Sequence[EvalItem]) -> list[tuple[float, float]]:
    """(coverage of the top three passages, cosine of the best) for each item's question."""
    found = []
    for item in items:
        sources = [hit.to_dict() for hit in retriever.search(item.question, 5)]
        cosine = float(sources[0].get("dense_score") or 0.0) if sources else 0.0
        found.append((documents_coverage(item.question, sources), cosine))
    return found


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

    mine, world = _signals(documents, unanswered), _signals(documents, public)
    print(f"About the documents: {len(unanswered)} docs-dev unanswered vs {len(world)} SQuAD dev questions over the "
          "docs-dev documents (either condition)")
    print("| coverage >= | or cosine >= | docs-dev unanswered | SQuAD questions |\n|---|---|---|---|")
    for coverage in COVERAGES:
        for cosine in COSINES:
            ours = sum(1 for c, d in mine if c >= coverage or d >= cosine)
            theirs = sum(1 for c, d in world if c >= coverage or d >= cosine)
            print(f"| {coverage} | {cosine} | {ours}/{len(mine)} | {theirs}/{len(world)} |")

    over_docs, over_squad = _signals(documents, chat), _signals(squad, chat)
    questions = _signals(documents, docs.items)
    print(f"\nChat to documents: {len(chat)} routing-dev chat prompts; docs-dev questions moved (both conditions)")
    print("| coverage >= | and cosine >= | chat over docs-dev | chat over SQuAD | docs-dev questions |\n"
          "|---|---|---|---|---|")
    for coverage in COVERAGES:
        for cosine in (0.0, 0.4, 0.5):
            counts = [sum(1 for c, d in signals if c >= coverage and d >= cosine)
                      for signals in (over_docs, over_squad, questions)]
            print(f"| {coverage} | {cosine} | {counts[0]}/{len(chat)} | {counts[1]}/{len(chat)} | "
                  f"{counts[2]}/{len(questions)} |")


if __name__ == "__main__":
    main()
