"""What the product can see about a turn before it decides to escalate: cheap, model-independent numbers.

Every function here is pure (text and numbers in, a flat ``{name: float}`` out), so the features a dev run recorded
are the features the live graph computes, and the learned decision (``assistant.core.escalation``) is a pure function of
them. Names are stable: stored weights refer to them.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from assistant.core.confidence import low_quantile, strip_citations, support
from assistant.core.passages import sentences
from assistant.core.working import Working
from retrieval.bm25 import tokenize

WH_WORDS = ("who", "when", "where", "which", "why", "how_many", "how", "what")
_NUMERIC = re.compile(r"\d")
_MONTHS = re.compile(r"\b(january|february|march|april|may|june|july|august|september|october|november|december|"
                     r"century|decade|years?)\b", re.IGNORECASE)
_CAPITALISED = re.compile(r"\b[A-Z][a-z]")
_PUNCTUATION = re.compile(r"[^\w\s]")


def _normalised(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def token_features(probabilities: Sequence[float]) -> dict[str, float]:
    """Statistics of the generated tokens' probabilities: min, low quantiles, mean log-probability, first token,
    the share of unsure tokens (below 0.5) and the count (log)."""
    values = sorted(float(value) for value in probabilities)
    if not values:
        return dict.fromkeys(("p_min", "p10", "p25", "p50", "mean_logp", "p_first", "unsure_share", "log_tokens"),
                             0.0)
    logs = [math.log(max(value, 1e-6)) for value in probabilities]
    return {
        "p_min": values[0], "p10": low_quantile(values, 0.1), "p25": low_quantile(values, 0.25),
        "p50": low_quantile(values, 0.5), "mean_logp": sum(logs) / len(logs),
        "p_first": float(probabilities[0]),
        "unsure_share": sum(1 for value in values if value < 0.5) / len(values),
        "log_tokens": math.log1p(len(values)),
    }


def wh_form(question: str) -> str:
    """The question's first wh-word (``how_many`` for "how many/much/long/old/far/..."), else ``other``."""
    lowered = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big)\b", lowered):
        return "how_many"
    return next((word for word in re.findall(r"[a-z']+", lowered) if word in WH_WORDS), "other")


def question_form(question: str) -> dict[str, float]:
    """The question's wh-word (one-hot over :data:`WH_WORDS` and ``other``) and its length (log words)."""
    form = wh_form(question)
    return {f"wh_{name}": float(form == name) for name in (*WH_WORDS, "other")} | {
        "question_log_words": math.log1p(len(question.split()))}


def _share(words: set[str], found: set[str]) -> float:
    return len(words & found) / len(words) if words else 0.0


def type_match(question: str, answer: str) -> float:
    """1 when the answer has the shape the question asks for (a number for "how many", a date-like answer for
    "when", a capitalised name for "who"/"where"), 0 when it does not, 0.5 when the question does not say."""
    form = wh_form(question)
    if form == "how_many":
        return float(bool(_NUMERIC.search(answer)))
    if form == "when":
        return float(bool(_NUMERIC.search(answer) or _MONTHS.search(answer)))
    if form in ("who", "where"):
        return float(bool(_CAPITALISED.search(answer)))
    return 0.5


def retrieval_features(question: str, sources: Sequence[dict[str, Any]], evidence_text: str) -> dict[str, float]:
    """How well the retrieved passages match the question: dense and BM25 scores of the top hits and their margins,
    whether the top two come from one document, and the share of the question's words the evidence holds."""
    dense = [*sorted((float(source.get("dense_score") or 0.0) for source in sources), reverse=True), 0.0, 0.0]
    lexical = [*sorted((float(source.get("bm25_score") or 0.0) for source in sources), reverse=True), 0.0, 0.0]
    question_words = set(tokenize(question))
    top_text = str(sources[0].get("text", "")) if sources else ""
    return {
        "dense_top": dense[0], "dense_margin": dense[0] - dense[1],
        "bm25_top": math.log1p(max(lexical[0], 0.0)), "bm25_margin": math.log1p(max(lexical[0] - lexical[1], 0.0)),
        "top_same_doc": float(len(sources) > 1 and sources[0].get("doc_id") == sources[1].get("doc_id")),
        "question_in_evidence": _share(question_words, set(tokenize(evidence_text))),
        "question_in_top": _share(question_words, set(tokenize(top_text))),
        "no_hits": float(not sources),
    }


_QUESTION_WORDS = frozenset(tokenize("what which who whom whose when where why how many much does do did can could "
                                     "should would will was were is are there this these those any tell me give list "
                                     "name find say said according document documents"))


def question_terms(question: str) -> set[str]:
    """The question's content words: stop words and the words every question is made of left out."""
    return set(tokenize(question)) - _QUESTION_WORDS


def documents_coverage(question: str, sources: Sequence[dict[str, Any]], depth: int = 3) -> float:
    """The largest share of the question's content words that one of the top ``depth`` passages holds (its title and
    headings included): near 1 when the documents speak of what the question names, low when they do not."""
    terms = question_terms(question)
    if not terms:
        return 0.0
    best = 0.0
    for source in sources[:depth]:
        text = " ".join(str(source.get(key) or "") for key in ("title", "section", "text"))
        best = max(best, _share(terms, set(tokenize(text))))
    return best


# A number, version or code: a token with a digit (2019, 70B, eu-west-1). Ordinals (5th) are left out, as passages
# often spell them ("fifth"); so are acronyms, which passages often spell out ("NFL", "National Football League").
_SPECIFIC = re.compile(r"\b(?=[A-Za-z0-9_./-]*\d)[A-Za-z0-9_./-]+\b")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)", re.IGNORECASE)


def absent_specifics(question: str, sources: Sequence[dict[str, Any]]) -> list[str]:
    """The question's numbers, versions and codes that none of the retrieved passages holds (titles and headings
    included): a question about a year, a model size or a region the documents never mention is not answered there,
    whatever the nearest row says (docs-dev: 4 of 28 unanswered questions; 0 of 103 answered ones, 0 of 600
    facts-dev questions)."""
    words = set(tokenize(" ".join(" ".join(str(source.get(key) or "") for key in ("title", "section", "text"))
                                  for source in sources)))
    return [term for term in dict.fromkeys(_SPECIFIC.findall(question))
            if not _ORDINAL.fullmatch(term) and (parts := tokenize(term)) and not all(part in words for part in parts)]


def speaks_of(question: str, sources: Sequence[dict[str, Any]], coverage: float, cosine: float) -> bool:
    """Whether the documents speak of what the question names: its top passages hold at least ``coverage`` of its
    content words, or a passage's cosine reaches ``cosine`` (then it is never answered from general knowledge)."""
    best = max((float(source.get("dense_score") or 0.0) for source in sources), default=0.0)
    return documents_coverage(question, sources) >= coverage or best >= cosine


def matches_documents(question: str, sources: Sequence[dict[str, Any]], coverage: float, cosine: float) -> bool:
    """Whether a question the router sent to chat or a word problem belongs to the documents: its top passages hold
    at least ``coverage`` of its content words and the best-ranked passage's cosine reaches ``cosine``."""
    return bool(sources) and documents_coverage(question, sources) >= coverage and \
        float(sources[0].get("dense_score") or 0.0) >= cosine


def answerability_features(question: str, sources: Sequence[dict[str, Any]], evidence_text: str) -> dict[str, float]:
    """What is known about a FACT turn before any model answers: the question's form and the retrieval."""
    return question_form(question) | retrieval_features(question, sources, evidence_text) | {
        "documents_coverage": documents_coverage(question, sources)}


ANSWERABILITY_FEATURES = tuple(answerability_features("", [], ""))


def fact_features(question: str, answer: str, evidence_text: str, sources: Sequence[dict[str, Any]],
                  token_probabilities: Sequence[float], *, not_found: bool, finish_reason: str) -> dict[str, float]:
    """Every feature of a FACT turn: the answer's tokens, its fit with the evidence and the question, retrieval."""
    bare = strip_citations(answer)
    answer_words = set(tokenize(bare))
    normalised_answer = _normalised(bare)
    return {
        **answer_location(question, normalised_answer, evidence_text, sources),
        **token_features(token_probabilities),
        **answerability_features(question, sources, evidence_text),
        "not_found": float(not_found),
        "length_cut": float(finish_reason == "length"),
        "answer_log_words": math.log1p(len(bare.split())),
        "verbatim": float(bool(normalised_answer) and normalised_answer in _normalised(evidence_text)),
        "answer_in_evidence": support(answer, evidence_text),
        "answer_in_question": _share(answer_words, set(tokenize(question))),
        "type_match": type_match(question, bare),
    }


def answer_location(question: str, normalised_answer: str, evidence_text: str,
                    sources: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Where the answer sits: the share of the question's words in the evidence sentence that holds it (the best
    one), and whether the top retrieved chunk, or any of the first three, contains it."""
    question_words = set(tokenize(question))
    overlap = 0.0
    if normalised_answer and question_words:
        for sentence in sentences(evidence_text):
            if normalised_answer in _normalised(sentence):
                overlap = max(overlap, _share(question_words, set(tokenize(sentence))))
    ranks = [rank for rank, source in enumerate(sources[:3])
             if normalised_answer and normalised_answer in _normalised(str(source.get("text", "")))]
    return {"answer_sentence_overlap": overlap, "answer_in_top_chunk": float(bool(ranks) and ranks[0] == 0),
            "answer_in_a_chunk": float(bool(ranks))}


def repetition(text: str, size: int = 4) -> float:
    """Share of the text's word ``size``-grams that occur more than once (a looping answer scores high)."""
    words = text.lower().split()
    grams = [tuple(words[index:index + size]) for index in range(len(words) - size + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(count for count in counts.values() if count > 1) / len(grams)


def chat_features(question: str, answer: str, token_probabilities: Sequence[float], *,
                  finish_reason: str) -> dict[str, float]:
    """Every feature of a CHAT turn: the answer's tokens, its length, looping, and the question's form."""
    return {
        **token_features(token_probabilities),
        **question_form(question),
        "length_cut": float(finish_reason == "length"),
        "answer_log_words": math.log1p(len(answer.split())),
        "repetition": repetition(answer),
        "empty": float(not answer.strip()),
    }


def program_features(programs: Sequence[str], results: Sequence[Any], agreement: float,
                     token_probabilities: Sequence[float]) -> dict[str, float]:
    """Every feature of a word-problem turn: the first program's tokens, how many programs ran, agreement between
    samples, the answer's step count, and whether it is a whole and a non-negative number (word problems' answers
    usually are). ``results`` holds each program's ``CalcResult`` or None when it failed."""
    best = next((result for result in results if result is not None), None)
    steps = 0
    if programs:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            steps = len(json.loads(programs[0]).get("steps", []))
    value = float(best.approx) if best is not None and best.approx is not None else None
    return {
        **token_features(token_probabilities),
        "executes": sum(result is not None for result in results) / max(1, len(results)),
        "agreement": agreement,
        "log_steps": math.log1p(steps),
        "integer": float(value is not None and float(value).is_integer()),
        "negative": float(value is not None and value < 0),
    }


def working_features(working: Working) -> dict[str, float]:
    """Every feature of a word problem worked in prose: its tokens, how many results the calculator wrote, whether
    the final number is one of them, whether the working ran out of tokens, and the answer's shape."""
    value = working.value
    return {
        **token_features(working.token_probabilities),
        "log_steps": math.log1p(len(working.results)),
        "checked": float(working.checked),
        "answered": float(value is not None),
        "truncated": float(working.finish_reason == "length"),
        "integer": float(value is not None and value.denominator == 1),
        "negative": float(value is not None and value < 0),
    }
