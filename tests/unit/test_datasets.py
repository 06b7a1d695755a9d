"""Dataset parsing without downloads: SQuAD JSON and user JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from common.sources import DatasetError
from eval.datasets import user_items
from eval.suites import available_suites
from retrieval.squad import hotpotqa_doc_id, parse_hotpotqa, parse_squad


def test_parse_squad_v2_marks_unanswerable_questions(tmp_path: Path) -> None:
    data = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [{"context": "Rollo led them.", "qas": [
        {"id": "a", "question": "Who led them?", "answers": [{"text": "Rollo"}], "is_impossible": False},
        {"id": "b", "question": "Who led the Danes in 1200?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Rollo"}]}]}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    squad = parse_squad(path)
    assert [(q.id, q.answerable, q.answers) for q in squad.questions] == [("a", True, ("Rollo",)), ("b", False, ())]
    assert [q.id for q in squad.answerable] == ["a"]


def test_parse_hotpotqa_shares_paragraphs_by_title(tmp_path: Path) -> None:
    records = [
        {"_id": "q1", "question": "Were A and B born in the same country?", "answer": "yes", "type": "comparison",
         "supporting_facts": [["B", 0], ["A", 0]], "context": [["A", ["A was born in Peru.", " A sings."]],
                                                               ["B", ["B was born in Peru."]]]},
        {"_id": "q2", "question": "Where was A born?", "answer": "Peru", "type": "bridge",
         "supporting_facts": [], "context": [["A", ["A was born in Peru.", " A sings."]], ["C", ["C is a city."]]]},
    ]
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(records))
    data = parse_hotpotqa(path)
    assert [p.title for p in data.paragraphs] == ["A", "B", "C"]
    assert data.paragraphs[0].text == "A was born in Peru. A sings."
    assert data.paragraphs[0].doc_id == hotpotqa_doc_id("A")
    first, second = data.questions
    assert first.doc_id == hotpotqa_doc_id("B") and first.answers == ("yes",) and first.kind == "comparison"
    assert first.context_ids == (hotpotqa_doc_id("A"), hotpotqa_doc_id("B")) and second.doc_id == hotpotqa_doc_id("A")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetError, match="not a HotpotQA list"):
        parse_hotpotqa(tmp_path / "bad.json")


def test_parse_squad_keeps_paragraph_ids_and_unique_answers(tmp_path: Path) -> None:
    data = {"version": "1.1", "data": [{"title": "Super_Bowl_50", "paragraphs": [
        {"context": "The Denver Broncos won.", "qas": [
            {"id": "q1", "question": "Who won?", "answers": [{"text": "Denver Broncos"}, {"text": "Denver Broncos"},
                                                              {"text": "Broncos"}]}]},
        {"context": "It was in Santa Clara.", "qas": []}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    squad = parse_squad(path)
    assert [p.doc_id for p in squad.paragraphs] == ["squad-dev/00/000", "squad-dev/00/001"]
    assert squad.paragraphs[0].title == "Super Bowl 50"
    assert squad.questions[0].answers == ("Denver Broncos", "Broncos")
    assert squad.questions[0].doc_id == "squad-dev/00/000"


def test_user_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join([
        json.dumps({"question": "What is 2+2?", "answer": 4, "kind": "arithmetic"}),
        "",
        json.dumps({"id": "x", "question": "Capital of France?", "answers": ["Paris"]}),
        json.dumps({"question": "Tell me a joke"}),
    ]))
    items = user_items(path)
    assert [(i.id, i.kind, i.answers) for i in items] == [
        ("mine:1", "arithmetic", ("4",)), ("x", "fact", ("Paris",)), ("mine:4", "chat", ())]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "mine.jsonl:1 is not valid JSON"),
        (json.dumps({"answers": ["a"]}), "needs a non-empty 'question'"),
        (json.dumps({"question": "q", "kind": "poetry"}), "has kind 'poetry'"),
        ("\n\n", "holds no questions"),
    ],
)
def test_user_jsonl_errors_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        user_items(path)


def test_available_datasets_are_described(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"docs-dev", "docs-test", "mixed-dev", "mixed-test", "ood-hotpotqa", "routing-dev", "routing-test",
            "squad-v2-dev", "hotpotqa", "bigbench-arithmetic", "gsm-symbolic", "mt-bench",
            "alpaca-eval"} <= set(available_suites())
    assert main(["eval", "datasets"]) == 0
    assert capsys.readouterr().out.startswith("docs-dev ")


def test_expected_route_follows_the_kind_except_mt_bench_math() -> None:
    from eval.datasets import EvalItem, expected_route

    def item(kind: str, source: str) -> EvalItem:
        return EvalItem("id", kind, "q", (), source)  # type: ignore[arg-type]

    assert expected_route(item("fact", "squad-dev")) == "FACT"
    assert expected_route(item("word_problem", "reasoning-gym/gsm_symbolic")) == "MATH"
    assert expected_route(item("chat", "mt-bench/writing")) == "CHAT"
    assert expected_route(item("chat", "mt-bench/math")) == "MATH"
