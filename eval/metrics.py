"""Scoring one prediction: SQuAD EM/F1 with the official normalisation, and numeric match with a tolerance."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from assistant.core.confidence import strip_citations
from assistant.core.prompts import GENERAL_KNOWLEDGE_LABEL, NOT_FOUND, NOT_IN_DOCUMENTS

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)
# A number as people and models write it: -1,234.5 / 3/4 / 1e6 / .5 (thousands separators only in groups of 3).
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*/\s*\d+)?")
ANSWER_MARKER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's official normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token-overlap F1 of the normalised strings (SQuAD v1.1's definition)."""
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(truth).split()
    common = Counter(predicted) & Counter(expected)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def clean_fact_answer(text: str) -> str:
    """The answer a model gave, without citations, the general-knowledge label, or the "not in the documents"
    refusal."""
    stripped = strip_citations(text).removeprefix(GENERAL_KNOWLEDGE_LABEL).strip()
    return "" if NOT_FOUND in stripped.lower() or stripped.startswith(NOT_IN_DOCUMENTS) else stripped


def flagged(text: str) -> bool:
    """Whether an answer says the documents do not answer the question (a refusal or a labelled general-knowledge
    answer)."""
    stripped = strip_citations(text).strip()
    return stripped.startswith((GENERAL_KNOWLEDGE_LABEL, NOT_IN_DOCUMENTS)) or NOT_FOUND in stripped.lower()


def contains_answer(prediction: str, answers: tuple[str, ...] | list[str]) -> bool:
    """Whether a reference answer appears in the prediction: normalised and as whole words, or, for an answer with
    punctuation inside it (``.ninja_log``, ``full-intel``) that normalising would glue to its neighbours, as it is
    written (case and spacing aside)."""
    predicted = f" {normalize_answer(prediction)} "
    written = " ".join(prediction.lower().split())
    for truth in answers:
        normalised = normalize_answer(truth)
        if normalised and f" {normalised} " in predicted:
            return True
        literal = " ".join(truth.lower().split())
        if len(literal) >= 4 and any(char in _PUNCTUATION for char in literal.strip(".")) and literal in written:
            return True
    return False


def document_score(prediction: str, answers: tuple[str, ...] | list[str]) -> Score:
    """A question about a person's documents: without answers (not answered there) right when the answer is
    flagged; with answers right when it is not flagged and holds a reference answer (normalised containment) or its
    number. EM and F1 are reported beside."""
    if not answers:
        return Score(float(flagged(prediction)))
    if flagged(prediction):
        return Score(0.0, 0.0, 0.0)
    em, f1 = squad_scores(prediction, answers)
    cleaned = clean_fact_answer(prediction)
    numbers = [answer for answer in answers if parse_number(answer) is not None]
    right = contains_answer(cleaned, answers) or bool(numbers and numeric_match(cleaned, numbers))
    return Score(float(right), em, f1)


def squad_scores(prediction: str, answers: tuple[str, ...] | list[str]) -> tuple[float, float]:
    """(EM, F1), each the maximum over the reference answers, as the official script computes them."""
    if not answers:
        return 0.0, 0.0
    cleaned = clean_fact_answer(prediction)
    return (max(exact_match(cleaned, truth) for truth in answers),
            max(f1_score(cleaned, truth) for truth in answers))


def parse_number(text: str) -> Fraction | None:
    """One number written as an integer, decimal, thousands-separated, scientific or a/b fraction; else None."""
    text = text.strip().replace("−", "-")
    if not text or not any(ch.isdigit() for ch in text):
        return None
    try:
        if "/" in text:
            numerator, denominator = (part.strip().replace(",", "") for part in text.split("/", 1))
            return Fraction(Fraction(numerator), Fraction(denominator))
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def numbers_in(text: str) -> list[Fraction]:
    """Every number in ``text``, in order."""
    found = []
    for match in _NUMBER.finditer(text.replace("−", "-").replace("$", "")):
        value = parse_number(match.group())
        if value is not None:
            found.append(value)
    return found


def predicted_number(text: str) -> Fraction | None:
    """The number a free-text answer commits to: the first after the last "answer:" marker, else the last one.

    The calculator's own formats yield its value: ``≈ decimal (exactly exact)`` the decimal (the exact form may be
    ``sqrt(2)``), the older ``exact (≈ decimal)`` the exact value.
    """
    text = strip_citations(text)
    markers = list(ANSWER_MARKER.finditer(text))
    if markers:
        after = numbers_in(text[markers[-1].end():])
        if after:
            return after[0]
    if "≈" in text:
        exact_first, decimal_first = (numbers_in(part) for part in text.split("≈", 1))
        if exact_first:
            return exact_first[-1]
        if decimal_first:
            return decimal_first[0]
    found = numbers_in(text)
    return found[-1] if found else None


def numeric_match(prediction: str, answers: tuple[str, ...] | list[str], *, relative: float = 1e-6,
                  absolute: float = 1e-6) -> float:
    """1.0 when the predicted number equals a reference within the tolerance (either one suffices)."""
    value = predicted_number(prediction)
    if value is None:
        return 0.0
    for answer in answers:
        truth = parse_number(answer)
        if truth is None:
            continue
        if value == truth or math.isclose(float(value), float(truth), rel_tol=relative, abs_tol=absolute):
            return 1.0
    return 0.0


@dataclass(frozen=True)
class Score:
    """How one prediction scored: ``correct`` is what accuracy averages (EM for facts, numeric match else)."""

    correct: float | None
    exact_match: float | None = None
    f1: float | None = None


def score(kind: str, prediction: str, answers: tuple[str, ...] | list[str]) -> Score:
    """Score a prediction for an item of ``kind``; items without answers (chat) are not scored, except documents
    questions, whose lack of answers means the documents do not answer them."""
    if kind == "document":
        return document_score(prediction, answers)
    if not answers:
        return Score(None)
    if kind == "fact":
        em, f1 = squad_scores(prediction, answers)
        return Score(em, em, f1)
    return Score(numeric_match(prediction, answers))
