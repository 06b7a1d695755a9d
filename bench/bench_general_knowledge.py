"""Closed-book answers of both tiers to questions about invented private things and about the public world, with
each answer's 10th-percentile token probability: what `general_confidence` and the choice of the large model for
general knowledge rest on (docs/BENCHMARKS.md, "Your documents").

Usage: python bench/bench_general_knowledge.py

The questions were written for this bench (none comes from a dataset): four about things no model can know (a
company's policy, a product, a person) and seven about the public world.
"""

from __future__ import annotations

from assistant.core.features import chat_features
from assistant.core.prompts import general_messages
from assistant.core.settings import Settings
from models.registry import load_model

PRIVATE = ("What is the zorblax kept by Ellinor Quade fed?",
           "How many months of warranty does the Tarnwick Q7 kettle have?",
           "Who approves leave requests of more than 10 days at Brindle & Co?",
           "When is Founders' Day at Varnholt Systems?")
PUBLIC = ("Who is the president of France?", "What is the capital of Australia?", "Who wrote Hamlet?",
          "In what year did the Berlin Wall fall?", "What is the boiling point of water in Fahrenheit?",
          "Who painted the Mona Lisa?", "What is the largest planet in the solar system?")


def main() -> None:
    settings = Settings()
    models = {tier: load_model(settings, tier) for tier in ("small", "large")}
    print("| kind | question | tier | p10 | answer |\n|---|---|---|---|---|")
    for kind, questions in (("private", PRIVATE), ("public", PUBLIC)):
        for question in questions:
            for tier, model in models.items():
                completion = model.chat(general_messages(question), max_tokens=32, temperature=0.0)
                features = chat_features(question, completion.text, completion.token_probabilities,
                                         finish_reason=completion.finish_reason)
                answer = " ".join(completion.text.split())[:60]
                print(f"| {kind} | {question} | {tier} | {features['p10']:.2f} | {answer} |")


if __name__ == "__main__":
    main()
