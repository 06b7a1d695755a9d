"""Word-problem prompt variants on the mixed-dev suite's gsm_symbolic problems: accuracy, tokens, FLOPs, time.

Usage: python bench/bench_word_problem.py [--limit 100] [--tiers large] [--variants expression,steps,cot]

``expression`` is the single calculator expression the graph asked for before 2026-11-24, ``steps`` the named-step
program the graph uses now (each step one calculator expression, evaluated by the calculator), ``cot`` the
step-by-step prose the large-only baseline uses (the model does its own arithmetic), ``lines`` plain
``name = expression`` lines without a grammar (tried and dropped: the model computed the results itself),
``compact`` the same lines forced by a GBNF grammar ending in ``answer = ...``, ``cot_calc`` the chain of thought
whose arithmetic the calculator does during generation: generation stops at every ``=``, the calculator evaluates the
arithmetic just before it and writes the value, and generation goes on from there (the model's own arithmetic never
reaches the answer), ``pairs`` the named steps as ``[name, expression]`` pairs (fewer output tokens), and
``steps_shot`` the named steps with numbers put straight into the expressions and one hand-written worked example in
the system prompt.

With two or more variants, the bench also reports each pair's agreement (both programs run on every problem; when
their numbers agree that number is the answer, and a disagreement is either answered by the second variant or
escalated): how often they agree, how often the agreed number is right, and what both cost together.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from assistant.core.nodes.math import PROGRAM_MAX_TOKENS
from assistant.core.program import MAX_STEPS, NAME_PATTERN, PROGRAM_SCHEMA, ProgramError, evaluate_program, run_steps
from assistant.core.prompts import PROGRAM_SYSTEM, program_messages
from assistant.core.settings import AssistantSettings, Settings
from assistant.core.working import work
from eval.metrics import numeric_match, predicted_number
from eval.suites import mixed_items
from eval.systems import DIRECT_PROMPTS
from models.base import ChatModel, Completion, Message, Usage
from models.registry import load_model
from tools.calculator import calculate
from tools.errors import CalculatorError

EXPRESSION_SYSTEM = (
    "Turn the word problem into ONE arithmetic expression whose value is the answer. Use only numbers, + - * / "
    "( ) and %. Do not compute the result yourself and do not explain. Reply with JSON only."
)
EXPRESSION_SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string", "maxLength": 300}},
    "required": ["expression"],
    "additionalProperties": False,
}


def _expression(model: ChatModel, question: str) -> tuple[str, Completion]:
    messages: list[Message] = [{"role": "system", "content": EXPRESSION_SYSTEM}, {"role": "user", "content": question}]
    completion = model.chat(messages, max_tokens=96, temperature=0.0, json_schema=EXPRESSION_SCHEMA)
    try:
        answer = calculate(str(json.loads(completion.text)["expression"])).exact
    except (ValueError, KeyError, TypeError, CalculatorError):
        answer = ""
    return answer, completion


def _steps(model: ChatModel, question: str) -> tuple[str, Completion]:
    completion = model.chat(program_messages(question), max_tokens=PROGRAM_MAX_TOKENS, temperature=0.0,
                            json_schema=PROGRAM_SCHEMA)
    try:
        return evaluate_program(completion.text, calculate).exact, completion
    except ProgramError:
        return "", completion


def _cot(model: ChatModel, question: str) -> tuple[str, Completion]:
    messages: list[Message] = [{"role": "system", "content": DIRECT_PROMPTS["word_problem"]},
                               {"role": "user", "content": question}]
    completion = model.chat(messages, max_tokens=256, temperature=0.0)
    return completion.text, completion


_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$")


def parse_lines(text: str) -> list[tuple[str, str]]:
    """The ``name = expression`` lines of a reply (code fences, comments and other lines are skipped)."""
    return [(match.group(1).lower(), match.group(2)) for line in text.splitlines()
            if (match := _ASSIGNMENT.match(line.split("#", 1)[0].strip()))]


LINES_SYSTEM = (
    "Solve the word problem as a short program: one line per quantity you need, `name = expression`, using only "
    "numbers, + - * / ( ), % and the names of earlier lines. The last line is the answer to the question. Do not "
    "compute any result yourself and do not explain."
)


def _lines(model: ChatModel, question: str) -> tuple[str, Completion]:
    messages: list[Message] = [{"role": "system", "content": LINES_SYSTEM}, {"role": "user", "content": question}]
    completion = model.chat(messages, max_tokens=192, temperature=0.0)
    try:
        return run_steps(parse_lines(completion.text), calculate).exact, completion
    except ProgramError:
        return "", completion


COMPACT_GRAMMAR = r"""
root ::= line? line? line? line? line? line? line? "answer = " expr "\n"
line ::= name " = " expr "\n"
name ::= [a-z] [a-z0-9_]*
expr ::= [0-9a-z_ +*/().%-]+
"""
COMPACT_SYSTEM = LINES_SYSTEM.replace("The last line is the answer to the question.",
                                      "The last line is `answer = ...`.")


def _compact(model: ChatModel, question: str) -> tuple[str, Completion]:
    import llama_cpp

    grammar = llama_cpp.LlamaGrammar.from_string(COMPACT_GRAMMAR, verbose=False)  # type: ignore[attr-defined]
    llama = model.llama  # type: ignore[attr-defined]
    reply = llama.create_chat_completion(messages=[{"role": "system", "content": COMPACT_SYSTEM},
                                                   {"role": "user", "content": question}],
                                         max_tokens=160, temperature=0.0, grammar=grammar)
    completion = _raw_completion(model, reply["choices"][0]["message"]["content"], reply["usage"])
    try:
        return run_steps(parse_lines(completion.text), calculate).exact, completion
    except ProgramError:
        return "", completion


def _raw_completion(model: ChatModel, text: str, usage: dict[str, int]) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(
        model=model.name, prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"],
        wall_seconds=0.0, cpu_seconds=0.0, parameters=model.parameters,
        price_per_million_tokens=getattr(model, "price_per_million_tokens", 0.0)))


def _cot_calc(model: ChatModel, question: str) -> tuple[str, Completion]:
    """The graph's default path (assistant.core.working): the chain of thought, the calculator writing every result."""
    done = work(model, question, calculate, max_tokens=AssistantSettings().word_problem_max_tokens,
                emit=lambda text: None)
    completions = done.completions
    usage = {"prompt_tokens": completions[0].usage.prompt_tokens if completions else 0,
             "completion_tokens": sum(completion.usage.completion_tokens for completion in completions)}
    return done.text, _raw_completion(model, done.text, usage)


PAIRS_SCHEMA = {
    "type": "object",
    "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": {
        "type": "array", "prefixItems": [{"type": "string", "pattern": NAME_PATTERN},
                                         {"type": "string", "maxLength": 200}],
        "minItems": 2, "maxItems": 2}}},
    "required": ["steps"],
    "additionalProperties": False,
}
PAIRS_SYSTEM = PROGRAM_SYSTEM.replace("Write one step for each quantity you need: a snake_case name and an "
                                      "arithmetic expression",
                                      "Write one step for each quantity you need, as a pair [snake_case name, "
                                      "arithmetic expression]")


def _pairs(model: ChatModel, question: str) -> tuple[str, Completion]:
    messages: list[Message] = [{"role": "system", "content": PAIRS_SYSTEM}, {"role": "user", "content": question}]
    completion = model.chat(messages, max_tokens=PROGRAM_MAX_TOKENS, temperature=0.0, json_schema=PAIRS_SCHEMA)
    try:
        steps = [(str(name), str(expression)) for name, expression in json.loads(completion.text)["steps"]]
        return run_steps(steps, calculate).exact, completion
    except (ProgramError, ValueError, KeyError, TypeError):
        return "", completion


SHOT_SYSTEM = PROGRAM_SYSTEM + (
    " Put the problem's numbers straight into the expressions: no step only copies a number. A percentage p% is "
    "p / 100.\n\nExample. Problem: A bakery sells 120 muffins on Monday and 25% more on Tuesday. Each muffin costs "
    "$3. How much money does it make over the two days?\n"
    '{"steps": [{"name": "tuesday", "expression": "120 * (1 + 25 / 100)"}, '
    '{"name": "muffins", "expression": "120 + tuesday"}, {"name": "money", "expression": "muffins * 3"}]}'
)


def _steps_shot(model: ChatModel, question: str) -> tuple[str, Completion]:
    messages: list[Message] = [{"role": "system", "content": SHOT_SYSTEM}, {"role": "user", "content": question}]
    completion = model.chat(messages, max_tokens=PROGRAM_MAX_TOKENS, temperature=0.0, json_schema=PROGRAM_SCHEMA)
    try:
        return evaluate_program(completion.text, calculate).exact, completion
    except ProgramError:
        return "", completion


VARIANTS = {"expression": _expression, "steps": _steps, "cot": _cot, "lines": _lines, "compact": _compact,
            "cot_calc": _cot_calc, "pairs": _pairs, "steps_shot": _steps_shot}


def agreement_lines(answers: dict[str, list[str]], right: dict[str, list[float]],
                    flops: dict[str, list[float]]) -> list[str]:
    """Per pair of variants: agreement, accuracy when agreeing, accuracy when a disagreement takes the second
    variant's answer, and both variants' FLOPs per problem."""
    lines = [f"{'pair':<22} {'agree':>6} {'right|agree':>12} {'agree-else-2nd':>15} {'FLOPs':>9}"]
    names = list(answers)
    for position, first in enumerate(names):
        for second in names[position + 1:]:
            pairs = list(zip(answers[first], answers[second], strict=True))
            agree = [item for item, (one, two) in enumerate(pairs)
                     if (value := predicted_number(one)) is not None and value == predicted_number(two)]
            count = len(pairs)
            right_when_agreeing = sum(right[first][item] for item in agree) / len(agree) if agree else 0.0
            combined = sum(right[first][item] if item in agree else right[second][item] for item in range(count))
            cost = (sum(flops[first]) + sum(flops[second])) / count
            lines.append(f"{first + ' + ' + second:<22} {len(agree) / count:>6.3f} {right_when_agreeing:>12.3f} "
                         f"{combined / count:>15.3f} {cost:>9.2e}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--tiers", default="large")
    parser.add_argument("--variants", default="steps,cot,cot_calc")
    parser.add_argument("--save", type=Path, help="write every problem's answer per variant here (JSON lines)")
    args = parser.parse_args()
    settings = Settings.load()
    items = [item for item in mixed_items(settings.dataset_store(), "dev", progress=False)
             if item.kind == "word_problem"][: args.limit]
    print(f"{'tier':<6} {'variant':<11} {'accuracy':>9} {'prompt':>7} {'output':>7} {'FLOPs':>9} {'seconds':>8}")
    for tier in args.tiers.split(","):
        model = load_model(settings, tier, progress=False)
        answers: dict[str, list[str]] = {}
        right: dict[str, list[float]] = {}
        flops: dict[str, list[float]] = {}
        for name in args.variants.split(","):
            prompt = output = 0
            answers[name], right[name], flops[name] = [], [], []
            started = time.perf_counter()
            for item in items:
                answer, completion = VARIANTS[name](model, item.question)
                answers[name].append(answer)
                right[name].append(numeric_match(answer, item.answers))
                prompt += completion.usage.prompt_tokens
                output += completion.usage.completion_tokens
                flops[name].append(completion.usage.flops)
                if args.save:
                    with args.save.open("a", encoding="utf-8") as out:
                        out.write(json.dumps({"tier": tier, "variant": name, "id": item.id, "answer": answer,
                                              "right": right[name][-1], "flops": flops[name][-1],
                                              "output_tokens": completion.usage.completion_tokens}) + "\n")
            count = len(items)
            print(f"{tier:<6} {name:<11} {sum(right[name]) / count:>9.3f} {prompt / count:>7.0f} "
                  f"{output / count:>7.0f} {sum(flops[name]) / count:>9.2e} "
                  f"{(time.perf_counter() - started) / count:>8.2f}", flush=True)
        if len(answers) > 1:
            print("\n".join(agreement_lines(answers, right, flops)), flush=True)


if __name__ == "__main__":
    main()
