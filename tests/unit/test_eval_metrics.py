"""Scoring: SQuAD's official normalisation and EM/F1, numeric matching edge cases, the sweep's APGR/CPT."""

from __future__ import annotations

import math
from typing import Any

import pytest

from eval.metrics import (
    document_score,
    exact_match,
    f1_score,
    normalize_answer,
    numeric_match,
    predicted_number,
    score,
    squad_scores,
)
from eval.results import confusion, percentile, routing_accuracy
from eval.sweep import area_under_pgr, choose_threshold, oracle_records, routed_records, sweep, thresholds


@pytest.mark.parametrize(("text", "normalised"), [
    ("The Denver Broncos!", "denver broncos"),
    ("  a  Tale of Two   Cities. ", "tale of two cities"),
    ("An apple, the pear", "apple pear"),
    ("Theory of relativity", "theory of relativity"),  # "the" inside a word stays
    ("U.S.A.", "usa"),
    ("1,000", "1000"),
])
def test_normalize_answer_follows_the_official_script(text: str, normalised: str) -> None:
    assert normalize_answer(text) == normalised


def test_exact_match_and_f1_on_known_cases() -> None:
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match("Broncos", "Denver Broncos") == 0.0
    # prediction "denver broncos won": precision 2/3, recall 1 -> F1 0.8
    assert f1_score("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    assert f1_score("Panthers", "Denver Broncos") == 0.0
    assert f1_score("", "Denver Broncos") == 0.0
    # repeated tokens count once per occurrence in both (Counter intersection)
    assert f1_score("the the broncos broncos", "broncos") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_squad_scores_take_the_best_reference_and_drop_citations() -> None:
    em, f1 = squad_scores("Denver Broncos [squad-dev/00/000#0]", ("Broncos", "Denver Broncos"))
    assert (em, f1) == (1.0, 1.0)
    assert squad_scores("not in the documents", ("Denver Broncos",)) == (0.0, 0.0)
    assert squad_scores("anything", ()) == (0.0, 0.0)


@pytest.mark.parametrize(("prediction", "answers", "expected"), [
    ("10063", ["10063"], 1.0),
    ("1,234", ["1234"], 1.0),
    ("$18.00", ["18"], 1.0),
    ("-7", ["-7"], 1.0),
    ("−7", ["-7"], 1.0),                     # unicode minus
    ("3/4 (≈ 0.75)", ["0.75"], 1.0),          # the calculator's format: exact value wins
    ("3/4 (≈ 0.75)", ["3/4"], 1.0),
    ("≈ 0.333333333333333 (exactly 1/3)", ["1/3"], 1.0),  # the calculator's decimal-first format
    ("≈ 1.4142135623731 (exactly sqrt(2))", ["1.41421356"], 1.0),  # sqrt(2)'s 2 is not the answer
    ("≈ 1.42857142857143e+29 (exactly 1000000000000000000000000000000/7)", ["1e30/7"], 1.0),
    ("0.3333333", ["1/3"], 1.0),              # within the relative tolerance
    ("0.33", ["1/3"], 0.0),
    ("He has 5 apples, then 3 more. Answer: 8", ["8"], 1.0),
    ("Step 1: 5 + 3 = 8\nAnswer: 8 apples", ["8"], 1.0),
    ("5 + 3 = 8, so 8 apples in 2 baskets", ["2"], 1.0),  # no marker: the last number
    ("The answer is 12.", ["12"], 1.0),
    ("no idea", ["12"], 0.0),
    ("12", ["not a number"], 0.0),
    ("1e3", ["1000"], 1.0),
    ("12 [calc#1]", ["12"], 1.0),
])
def test_numeric_match_edge_cases(prediction: str, answers: list[str], expected: float) -> None:
    assert numeric_match(prediction, answers) == expected


def test_predicted_number_prefers_the_final_answer_line() -> None:
    assert predicted_number("First 2 then 3. Answer: 5. Check: 5 - 3 = 2") == 5
    assert predicted_number("nothing here") is None


def test_score_by_kind() -> None:
    assert score("fact", "Denver Broncos", ("Denver Broncos",)).correct == 1.0
    assert score("arithmetic", "10063", ("10063",)).correct == 1.0
    assert score("word_problem", "Answer: 9", ("8",)).correct == 0.0
    assert score("chat", "Hello!", ()).correct is None


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


def test_confusion_matrix_and_routing_accuracy() -> None:
    records = {"a": {"kind": "fact", "route": "FACT"}, "b": {"kind": "word_problem", "route": "MATH"},
               "c": {"kind": "chat", "route": "FACT"}, "d": {"kind": "arithmetic", "route": "MATH"}}
    matrix = confusion(records)
    assert matrix == {"fact": {"FACT": 1}, "word_problem": {"MATH": 1}, "chat": {"FACT": 1},
                      "arithmetic": {"MATH": 1}}
    items = {"a": {"kind": "fact", "source": "squad-dev"}, "b": {"kind": "word_problem", "source": "gsm"},
             "c": {"kind": "chat", "source": "mt-bench/stem"}, "d": {"kind": "arithmetic", "source": "bigbench"}}
    assert routing_accuracy(records, items) == 0.75
    maths_chat = {"e": {"kind": "chat", "route": "MATH"}}
    assert routing_accuracy(maths_chat, {"e": {"kind": "chat", "source": "mt-bench/math"}}) == 1.0


# ---- the sweep on a hand-made result set -----------------------------------------------------------

def _weak(confidences: list[float], correct: list[float]) -> dict[str, dict[str, Any]]:
    return {f"i{index}": {"item_id": f"i{index}", "kind": "fact", "text": "small", "confidence": confidence,
                          "can_escalate": True, "correct": value, "wall_seconds": 1.0,
                          "usage": [{"tier": "small", "flops": 1.0, "wall_seconds": 1.0, "cpu_seconds": 1.0}]}
            for index, (confidence, value) in enumerate(zip(confidences, correct, strict=True))}


def _strong(count: int) -> dict[str, dict[str, Any]]:
    return {f"i{index}": {"item_id": f"i{index}", "kind": "fact", "text": "large", "correct": 1.0,
                          "wall_seconds": 3.0, "usage": [{"tier": "large", "flops": 3.0, "wall_seconds": 3.0,
                                                          "cpu_seconds": 2.0}]}
            for index in range(count)}


def test_sweep_gives_known_apgr_and_cpt_when_confidence_ranks_errors_first() -> None:
    # The two wrong answers have the lowest confidences: escalating them first closes the gap fastest.
    result = sweep(_weak([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]), _strong(4))
    assert (result.weak_accuracy, result.strong_accuracy) == (0.5, 1.0)
    curve = [(point.escalated_share, point.pgr) for point in result.points]
    assert curve == [(0.0, 0.0), (0.0, 0.0), (0.25, 0.5), (0.5, 1.0), (0.75, 1.0), (1.0, 1.0)]
    # area: 0.25*(0+0.5)/2 + 0.25*(0.5+1)/2 + 0.25 + 0.25
    assert result.apgr == pytest.approx(0.75)
    assert result.cpt == {"50%": 0.25, "80%": 0.5}


def test_sweep_with_confidence_backwards_scores_below_random() -> None:
    result = sweep(_weak([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1]), _strong(4))
    # escalating the right answers first gains nothing until half the turns have gone
    assert result.apgr == pytest.approx(0.25)
    assert result.cpt == {"50%": 0.75, "80%": 1.0}


def test_sweep_points_carry_cost_of_both_models() -> None:
    result = sweep(_weak([0.1, 0.9], [0, 1]), _strong(2))
    first, middle, last = result.points[0], result.points[2], result.points[-1]
    assert math.isinf(last.threshold)
    assert (first.flops, first.wall_seconds, first.large_share) == (2.0, 2.0, 0.0)
    assert (middle.flops, middle.wall_seconds, middle.large_share) == (5.0, 5.0, 0.5)
    assert (last.flops, last.large_share) == (8.0, 1.0)


def test_routed_composition_keeps_exact_turns_and_adds_escalation_cost() -> None:
    weak = _weak([0.2, 0.2], [0, 0])
    weak["i1"]["can_escalate"] = False  # e.g. plain arithmetic answered by the calculator
    composed = routed_records(weak, _strong(2), 0.5)
    assert composed["i0"]["text"] == "large" and composed["i0"]["escalated"]
    assert [usage["tier"] for usage in composed["i0"]["usage"]] == ["small", "large"]
    assert composed["i0"]["wall_seconds"] == 4.0 and composed["i0"]["cpu_seconds"] == 2.0
    assert composed["i1"]["text"] == "small"
    assert thresholds(weak) == [0.0, 0.2, math.inf]


def test_oracle_escalates_only_what_the_large_model_fixes() -> None:
    weak = _weak([0.9, 0.1], [0, 1])
    composed = oracle_records(weak, _strong(2))
    assert composed["i0"]["text"] == "large" and composed["i1"]["text"] == "small"


def test_area_under_pgr_starts_at_zero() -> None:
    assert area_under_pgr([]) == 0.0


def test_choose_threshold_for_targets() -> None:
    points = sweep(_weak([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]), _strong(4)).points
    by_escalation = choose_threshold(points, target_escalation=0.5, total_items=4)
    assert by_escalation is not None and by_escalation.escalated == 2 and by_escalation.threshold == 0.3
    by_accuracy = choose_threshold(points, target_accuracy=0.75, total_items=4)
    assert by_accuracy is not None and by_accuracy.escalated == 1 and by_accuracy.threshold == 0.2
    assert choose_threshold(points, target_accuracy=1.0, total_items=4).threshold == 0.3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="target"):
        choose_threshold(points, total_items=4)


@pytest.mark.parametrize(("prediction", "answers", "expected"), [
    ("14 September [1]", ["14 September"], 1.0),
    ("It is kept in .ninja_log [2]", [".ninja_log"], 1.0),  # punctuation inside: matched as written
    ("llama.cpp:full-intel [1]", ["full-intel"], 1.0),
    ("12 days", ["1"], 0.0),  # whole words only
    ("280.0 W", ["280"], 1.0),  # the number
    ("[%f/%t] [3]", ["[%f/%t] "], 1.0),  # square brackets that are not a citation stay in the answer
    ("Not in your documents; from general knowledge: 14 September", ["14 September"], 0.0),  # flagged
    ("I could not find this in your documents.", ["14 September"], 0.0),
    ("I could not find this in your documents.", [], 1.0),  # not answered there: flagging is right
    ("Not in your documents; from general knowledge: 3 years", [], 1.0),
    ("38 months [1]", [], 0.0),  # an answer the documents do not hold, presented as one
])
def test_documents_questions_are_scored_by_containment_and_flagging(prediction: str, answers: list[str],
                                                                    expected: float) -> None:
    assert document_score(prediction, answers).correct == expected
    assert score("document", prediction, answers).correct == expected


def test_the_documents_report_breaks_accuracy_down_and_counts_inventions() -> None:
    from eval.render import documents_lines
    from eval.results import documents_summary

    items = {"a": {"kind": "document", "source": "docs:html:table", "split": "test"},
             "b": {"kind": "document", "source": "docs:pdf:lookup", "split": "test"},
             "u": {"kind": "document", "source": "docs:pdf:unanswerable", "split": "test"},
             "v": {"kind": "document", "source": "docs:md:unanswerable", "split": "test"}}
    usage = [{"tier": "small", "flops": 10.0}]
    records = {"a": {"text": "34 [1]", "correct": 1.0, "f1": 1.0, "usage": usage},
               "b": {"text": "I could not find this in your documents.", "correct": 0.0, "f1": 0.0, "usage": usage},
               "u": {"text": "I could not find this in your documents.", "correct": 1.0, "usage": usage},
               "v": {"text": "Not in your documents; from general knowledge: 3", "correct": 1.0,
                     "general_knowledge": True, "usage": usage}}
    results = {"items": items, "systems": {"routed": records, "large-pipeline": records}}
    summary = documents_summary(results, "routed")
    assert summary is not None and summary["answered"] == 2 and summary["unanswered"] == 2
    assert summary["accuracy"]["estimate"] == 0.5 and summary["wrongly_flagged"] == 0.5
    assert summary["flagged"] == 1.0 and summary["general_knowledge_inventions"] == 1
    assert summary["by_format"] == {"html": {"n": 1, "accuracy": 1.0}, "pdf": {"n": 1, "accuracy": 0.0}}
    lines = "\n".join(documents_lines(results))
    assert "## Your documents" in lines and "| routed | 50.0 [" in lines and "1.00x" in lines


def test_a_users_own_document_questions_are_reported_without_a_format() -> None:
    """A user's JSONL with kind "document" crashed the report (its source, "user:<file>", names no format)."""
    from eval.results import documents_summary

    items = {"a": {"kind": "document", "source": "user:mine.jsonl", "split": "user"}}
    records = {"a": {"text": "27 days [1]", "correct": 1.0, "f1": 1.0, "usage": []}}
    summary = documents_summary({"items": items, "systems": {"routed": records}}, "routed")
    assert summary is not None and summary["answered"] == 1
    assert summary["by_format"] == {"other": {"n": 1, "accuracy": 1.0}}
