"""Word problems worked step by step in prose, every result written by the calculator (``cot_calc``).

The model writes its working under the chain-of-thought prompt; generation stops at every ``=``, the calculator
evaluates the arithmetic just before it and writes the value, and generation goes on from there, so the model's own
arithmetic never reaches the answer. The final line is ``Answer: <number>``; the answer people see is that number
with the unit the question implies ("$27", "14 apples", "35%"), marked as checked when the calculator wrote it.

Chosen on dev by accuracy (docs/BENCHMARKS.md, issue #33); the JSON programs of named steps stay available as
``assistant.word_problem_method = "program"``. Only the arithmetic between the last sentence break and ``=`` reaches
the calculator, through its own parser (never eval/sympify).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from assistant.core.prompts import WORKING_SYSTEM
from models.base import ChatModel, Completion, Message, cancellable, collect_stream
from tools.calculator import CalcResult
from tools.errors import CalculatorError

STOPS_ESTIMATE = 8
"""Calls a working usually takes (one per ``=``; 6.5 on average on dev): each sends the prompt again, so a cost cap
counts the prompt this many times."""
MAX_PIECES = 40
"""At most this many stops at ``=`` per problem (the token budget usually ends a runaway first)."""

_WORD = "§"
"""Stands for a word removed from between the numbers."""
_ARITHMETIC_TOKEN = re.compile(r"(?:(?<![\d)])-)?\d+(?:\.\d+)?%?|[-+*/()^§]")
_OPERATORS = frozenset("-+*/^")
_OPERATOR = re.compile(r"[+\-*/^]")
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SYMBOLS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("\\left", ""), ("\\right", ""),
                  ("\\(", " "), ("\\)", " "), ("\\[", " "), ("\\]", " "), ("\\%", "%"))
MAX_TOKENS_TRIED = 40
"""The arithmetic read before an ``=`` is at most this many numbers, operators and parentheses."""
_ANSWER_LINE = re.compile(r"answer\s*[:=]?\s*(.*)$", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_AUXILIARIES = frozenset(["do", "does", "did", "is", "are", "was", "were", "will", "would", "can", "could", "should",
                          "has", "have", "had", "must", "may", "might", "shall", "of", "in", "on", "at", "for", "to",
                          "from", "with", "by", "per", "the", "a", "an", "he", "she", "it", "they", "we", "you", "i",
                          "his", "her", "their", "there", "left", "remain", "remaining"])
_MONEY_WORDS = re.compile(r"\b(?:dollars?|money|cost|costs|pay|paid|spend|spent|earn|earned|save|saved|charge|price)\b")
_COMPARATIVES = frozenset(["more", "fewer", "less", "total", "additional", "extra", "whole", "different"])

Emit = Callable[[str], None]


@dataclass(frozen=True)
class Working:
    """A word problem worked through: the text as shown, the calculator's results in it, and the final value."""

    text: str
    completions: list[Completion]
    results: list[CalcResult]
    value: Fraction | None
    checked: bool
    token_probabilities: list[float] = field(default_factory=list)
    finish_reason: str = "stop"


def calculator_value(line: str, calculate: Callable[[str], CalcResult]) -> CalcResult | None:
    """The calculator's result for the arithmetic that ends ``line`` (at least one operator), else None.

    The arithmetic is read from the line's last clause as people and models write it: LaTeX (``\\frac{a}{b}``,
    ``\\times``), ``x`` and ``×`` between numbers, money signs, thousands separators, and the words and
    parenthesised notes between the numbers ("75 minutes (peeling) + 36 minutes"). The longest arithmetic suffix
    the calculator accepts wins; juxtaposed numbers are never read as a product."""
    tokens = _ARITHMETIC_TOKEN.findall(_last_clause(_plain(line)))
    # an operator followed by a word ("Step 1 - compute 3 * 4") joins nothing: the arithmetic starts after it
    cut = max((index + 1 for index in range(len(tokens) - 1)
               if tokens[index] in _OPERATORS and tokens[index + 1] == _WORD), default=0)
    tokens = [token for token in tokens[cut:] if token != _WORD]
    for start in range(max(0, len(tokens) - MAX_TOKENS_TRIED), len(tokens)):
        expression = " ".join(tokens[start:]).strip()
        if not (tokens[start][-1].isdigit() or tokens[start][-1] == "%" or tokens[start] == "("):
            continue  # an expression starts with a number (maybe negative) or a parenthesis, never an operator
        if not _OPERATOR.search(expression.lstrip("-")) or expression.count("(") != expression.count(")"):
            continue
        try:
            result = calculate(expression)
        except CalculatorError:
            continue
        return None if result.approx is None or result.solutions else result
    return None


def restated_arithmetic(text: str) -> str:
    """When the last line restates a name the working just set to some arithmetic ("Total = $790 - $47" then
    "Total ="), that arithmetic ("" otherwise)."""
    *earlier, current = text.split("\n")
    name = current.strip().lower()
    if not name or not re.search(r"[a-z]", name):
        return ""
    for line in [line for line in earlier if line.strip()][-3:][::-1]:
        left, sign, right = line.partition("=")
        if sign and left.strip().lower() == name and "=" not in right:
            return right
    return ""


def _plain(line: str) -> str:
    """``line`` without a leading bullet or list number, with LaTeX arithmetic, multiplication signs, "n% of",
    money signs and thousands separators made plain."""
    text = _LATEX_FRACTION.sub(r"(\1)/(\2)", re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line))
    for latex, plain in _LATEX_SYMBOLS:
        text = text.replace(latex, plain)
    text = re.sub(r"\\text\{[^{}]*\}", " ", text).replace("{", "(").replace("}", ")")
    text = text.replace("×", "*").replace("÷", "/").replace("·", "*").replace("$", "")
    text = re.sub(r"(?<=\d)\s*[xX]\s*(?=\d)", " * ", text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%\s*of\b", r"(\1 / 100) *", text)
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


def _last_clause_text(text: str) -> str:
    """The part of ``text`` after its last colon, semicolon, comma, equals sign or sentence end."""
    return re.split(r"[:;=,]|\.\s", text)[-1]


def _last_clause(text: str) -> str:
    """:func:`_last_clause_text`, its parenthesised notes removed and each word replaced by ``_WORD``."""
    clause = _last_clause_text(text)
    clause = re.sub(r"\([^()]*[A-Za-z][^()]*\)", " ", clause)
    return re.sub(r"[A-Za-z][A-Za-z'’-]*", f" {_WORD} ", clause)


def written(result: CalcResult) -> str:
    """How the calculator's result is written into the working: a decimal for a fraction, else exact."""
    return result.decimal if "/" in result.exact else result.exact


def working_messages(question: str) -> list[Message]:
    """The conversation the model works ``question`` in (its reply so far is appended as it grows)."""
    return [{"role": "system", "content": WORKING_SYSTEM}, {"role": "user", "content": question}]


def work(model: ChatModel, question: str, calculate: Callable[[str], CalcResult], *, max_tokens: int,
         emit: Emit, cancelled: Callable[[], bool] = lambda: False) -> Working:
    """Work ``question`` through with ``model``, the calculator writing every result; ``emit`` receives the working
    as it is written (the model's text and the calculator's values, in order)."""
    messages = working_messages(question)
    text, generated = "", 0
    completions: list[Completion] = []
    results: list[CalcResult] = []
    probabilities: list[float] = []
    finish = "stop"
    for _ in range(MAX_PIECES):
        prompt = messages + ([{"role": "assistant", "content": text}] if text else [])
        completion = collect_stream(cancellable(model.stream(prompt, max_tokens=max_tokens - generated,
                                                             temperature=0.0, stop=["="]), cancelled), emit)
        completions.append(completion)
        probabilities += completion.token_probabilities
        generated += completion.usage.completion_tokens
        text += completion.text
        line = text.rsplit("\n", 1)[-1]
        finish = completion.finish_reason
        if (finish != "stop" or generated >= max_tokens or not completion.text
                or re.search(r"answer\s*:?.*\d", line, re.IGNORECASE)):
            break
        arithmetic, result = line, calculator_value(line, calculate)
        if result is None and (arithmetic := restated_arithmetic(text)):
            result = calculator_value(arithmetic, calculate)
        money = "$" if "$" in _last_clause_text(arithmetic or "") else ""  # written in the working's own style
        piece = "=" if result is None else f"= {money}{written(result)}"
        if result is not None:
            results.append(result)
        text += piece
        emit(piece)
    value, checked = final_value(text, results, calculate)
    return Working(text=text.strip(), completions=completions, results=results, value=value, checked=checked,
                   token_probabilities=probabilities, finish_reason=finish if finish == "length" else "stop")


def final_value(text: str, results: list[CalcResult],
                calculate: Callable[[str], CalcResult]) -> tuple[Fraction | None, bool]:
    """The working's answer and whether the calculator wrote it: the number on the last ``Answer:`` line (its
    arithmetic evaluated by the calculator when it has some), else the last result the calculator wrote, else the
    working's last number (not checked)."""
    computed = [value for result in results if (value := _fraction(result.exact)) is not None]
    answer_lines = [match.group(1) for line in text.splitlines() if (match := _ANSWER_LINE.search(line.strip()))]
    if answer_lines:
        line = answer_lines[-1].rstrip(" .")
        result = calculator_value(line, calculate)
        if result is not None and (value := _fraction(result.exact)) is not None:
            return value, True
        numbers = _NUMBER.findall(line)
        if numbers:
            value = _fraction(numbers[0].replace(",", ""))
            return value, value is not None and value in computed
    if computed:
        return computed[-1], True
    numbers = _NUMBER.findall(text)  # cut short before any answer: its last number, as a reader would take it
    value = _fraction(numbers[-1].replace(",", "")) if numbers else None
    return value, False


def _fraction(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class Unit:
    """How the question implies its answer is written: ``prefix`` + number + ``suffix``."""

    prefix: str = ""
    suffix: str = ""


def implied_unit(question: str) -> Unit:
    """The unit the question asks for: money ("$"), a percentage ("%"), or the noun phrase after "how many" (up to
    three words, up to the first verb, preposition or pronoun: "how many bouncy balls does..." -> "bouncy balls")."""
    lowered = question.lower()
    if re.search(r"\bwhat (?:percent|percentage)\b", lowered):
        return Unit(suffix="%")
    asks_amount = re.search(r"\bhow much\b", lowered)
    if asks_amount and ("$" in question or _MONEY_WORDS.search(lowered, asks_amount.end())):
        return Unit(prefix="$")
    many = re.search(r"\bhow many ((?:[a-z-]+\s*){1,4})", lowered)
    if many:
        noun: list[str] = []
        for word in (word for word in many.group(1).split() if word not in _COMPARATIVES):
            if word in _AUXILIARIES or len(noun) == 3:
                break
            noun.append(word)
        if noun:
            return Unit(suffix=" " + " ".join(noun))
    return Unit()


def format_answer(value: Fraction, unit: Unit) -> str:
    """``value`` written as people expect it: thousands separated, money with cents when it has them, a fraction
    as a decimal, the unit around it ("$1,250.50", "3 apples", "12.5%", "-$4")."""
    magnitude = abs(value)
    if magnitude.denominator == 1:
        number = f"{magnitude.numerator:,}"
    else:
        decimal = Decimal(magnitude.numerator) / Decimal(magnitude.denominator)
        number = f"{decimal:,.2f}" if unit.prefix == "$" else f"{decimal:,.4f}".rstrip("0").rstrip(".")
    suffix = unit.suffix
    if magnitude == 1 and suffix.startswith(" ") and suffix.endswith("s") and not suffix.endswith("ss"):
        suffix = suffix[:-1]
    return f"{'-' if value < 0 else ''}{unit.prefix}{number}{suffix}"
