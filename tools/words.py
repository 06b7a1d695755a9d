"""Plain-language arithmetic -> calculator text, deterministically; anything else -> None.

"What is 347 times 29?" -> "347 * 29"; "what's 15% of 240" -> "15 / 100 * 240"; "square root of 144" ->
"sqrt(144)". A question that keeps any word the calculator does not know after the rewrite ("If Tom has 5
apples...") is not plain arithmetic and returns None, so the router can send it to a model.
"""

from __future__ import annotations

import re

from tools.errors import CalcParseError, CalculatorError, UnsupportedConstructError
from tools.parsing import CONSTANTS, FUNCTION_ALIASES, FUNCTION_ARITY, parse

_NUMBER = r"-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)"
_LEADING = re.compile(
    r"^(?:(?:please|hey|ok|so)[\s,]+)*(?:(?:can|could|would) you\s+)?(?:please\s+)?(?:tell me\s+)?"
    r"(?:what(?:'s|’s| is| are| does| do| would be| will be)|how much (?:is|are|does|do)|calculate|compute|"
    r"evaluate|work out|figure out|determine|find|give me|simplify)?\s*(?:the (?:value|result|answer) of\s+)?"
)
_TRAILING = re.compile(
    r"(?:\s*(?:,\s*)?(?:please|exactly|equal to|equals?|make|come to|give|be|is|=))*\s*[?.]*\s*$"
)
_PATTERNS: list[tuple[str, str]] = [
    (rf"(?:the )?sum of ({_NUMBER}) and ({_NUMBER})", r"(\1 + \2)"),
    (rf"(?:the )?product of ({_NUMBER}) and ({_NUMBER})", r"(\1 * \2)"),
    (rf"(?:the )?difference (?:between|of) ({_NUMBER}) and ({_NUMBER})", r"(\1 - \2)"),
    (rf"(?:the )?quotient of ({_NUMBER}) (?:and|by) ({_NUMBER})", r"(\1 / \2)"),
    (rf"(?:the )?remainder (?:when|of) ({_NUMBER}) (?:is )?divided by ({_NUMBER})", r"(\1 % \2)"),
    (rf"subtract ({_NUMBER}) from ({_NUMBER})", r"(\2 - \1)"),
    (rf"add ({_NUMBER}) (?:to|and) ({_NUMBER})", r"(\1 + \2)"),
    (rf"multiply ({_NUMBER}) (?:by|and|with) ({_NUMBER})", r"(\1 * \2)"),
    (rf"divide ({_NUMBER}) by ({_NUMBER})", r"(\1 / \2)"),
    (r"(?:the )?square root of", " sqrt "),
    (r"(?:the )?cube root of", " cbrt "),
    (r"(?:the )?natural (?:log|logarithm) of", " ln "),
    (r"(?:the )?(?:log|logarithm) base (\d+) of ([\d.]+)", r" log(\2, \1) "),
    (r"(?:the )?(?:log|logarithm) of", " log10 "),  # in plain language "the log of 100" is 2
    (r"(?:the )?absolute value of", " abs "),
    (r"(?:the )?factorial of", " factorial "),
    (r"(?:the )?(sine|cosine|tangent) of", r" \1 "),
    (r"\bsine\b", "sin"), (r"\bcosine\b", "cos"), (r"\btangent\b", "tan"),
    (r"(?:raised )?to the power of|raised to|to the power", " ^ "),
    (r"\bnegative\s+(?=\d)", "-"),
    # "-4 squared" is (-4)^2 = 16, as people say it (the written -4^2 stays -16)
    (r"(^|[-+*/(^%]\s*)-\s*(\d[\d,]*(?:\.\d+)?)\s+squared\b", r"\1(-\2) ^ 2"),
    (r"(^|[-+*/(^%]\s*)-\s*(\d[\d,]*(?:\.\d+)?)\s+cubed\b", r"\1(-\2) ^ 3"),
    (r"\bsquared\b", " ^ 2"), (r"\bcubed\b", " ^ 3"),
    (r"\bfactorial\b(?!\s*\(|\s*\d)", " ! "),
    (r"\bper ?cent\b", " % "),
    (r"\bplus\b|\badded to\b", " + "),
    (r"\bminus\b|\bless\b", " - "),
    (r"\bmultiplied by\b|\btimes\b", " * "),
    (r"(?<=\d)\s*x\s*(?=\d)", " * "),
    (r"\bdivided by\b|\bover\b", " / "),
    (r"\bmod(?:ulo)?\b", " % "),
    (r"\bthe\b", " "),
    # a sign right after a function word belongs to its argument: "sqrt - 4" is sqrt(-4)
    (r"\b(sqrt|cbrt|ln|log10|abs|factorial|sin|cos|tan)\s+-\s*(\d[\d,]*(?:\.\d+)?|\.\d+)", r"\1(-\2)"),
]
_COMPILED = [(re.compile(pattern), replacement) for pattern, replacement in _PATTERNS]
_ALLOWED_WORDS = frozenset(FUNCTION_ARITY) | frozenset(FUNCTION_ALIASES) | CONSTANTS | {"of", "solve"}
_OPERATOR = re.compile(r"[-+*/%^!=]|\*\*|//")
_UNIT_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
_TEN_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS)}
_TENS = {word: 10 * (index + 2) for index, word in enumerate(_TEN_WORDS)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_NUMBER_WORD = re.compile(
    r"\b(?:(?:" + "|".join([*_UNITS, *_TENS, *_SCALES]) + r")(?:[\s-]+|\b))+", re.IGNORECASE
)


def _words_to_number(match: re.Match[str]) -> str:
    words = [word for word in re.split(r"[\s-]+", match.group().lower()) if word]
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[word]
            current = 0
    trailing = " " if match.group().endswith((" ", "-")) else ""
    return f"{total + current}{trailing}"


def _rewrite(text: str) -> str:
    text = text.strip().lower()
    for symbol in "$€£":
        text = text.replace(symbol, "")
    text = _NUMBER_WORD.sub(_words_to_number, text)
    text = _LEADING.sub("", text, count=1)
    text = _TRAILING.sub("", text, count=1)
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def extract_expression(text: str) -> str | None:
    """Calculator text for plain-language arithmetic, or None when the text is anything else."""
    if len(text) > 500:
        return None
    candidate = _rewrite(text)
    words = re.findall(r"[a-z_]+", candidate)
    has_equation = "=" in candidate
    unknown_words = [word for word in words if word not in _ALLOWED_WORDS]
    if has_equation and len(set(unknown_words)) == 1 and len(unknown_words[0]) == 1:
        unknown_words = []
    if unknown_words or not re.search(r"\d", candidate):
        return None
    has_function = any(word in FUNCTION_ARITY or word in FUNCTION_ALIASES for word in words)
    if not (_OPERATOR.search(re.sub(r"^-", "", candidate)) or has_function):
        return None
    try:
        return parse(candidate).text
    except (CalcParseError, UnsupportedConstructError):
        return None
    except CalculatorError:
        return candidate
