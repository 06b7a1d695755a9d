"""The evaluation protocol without downloads: the split rule, bootstrap intervals, decontamination, code hashes."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from eval.datasets import EvalItem
from eval.leakage import find_leaks, ngrams, source_files
from eval.splits import hotpotqa_group, reserved, split_of, squad_group
from eval.stats import apgr_of, mean_interval, paired_difference, ratio_of_sums
from eval.sweep import sweep
from eval.systems import DIRECT_CODE, PIPELINE_CODE, PROJECT_ROOT, code_files, code_hash


def test_the_split_rule_is_a_fixed_hash_of_the_group() -> None:
    # Pinned values: the rule must give the same split on every machine and in every run.
    assert split_of(squad_group("Super Bowl 50")) == "dev"
    groups = [f"group-{index}" for index in range(2000)]
    shares = sum(split_of(group) == "test" for group in groups) / len(groups)
    assert 0.45 < shares < 0.55
    assert [split_of(f"gsm-template:{index}") for index in range(6)] == ["dev"] * 5 + ["test"]
    # the out-of-domain set is test only, whatever its hash; its reserved quarter is picked by another byte
    assert {split_of(hotpotqa_group(f"q{index}")) for index in range(200)} == {"test"}
    assert 0.2 < sum(reserved(hotpotqa_group(f"q{index}")) for index in range(2000)) / 2000 < 0.3


def test_an_item_takes_its_groups_split() -> None:
    one = EvalItem("a", "fact", "q1", ("x",), "squad-dev", group=squad_group("Normans"))
    two = EvalItem("b", "fact", "q2", ("y",), "squad-dev", group=squad_group("Normans"))
    assert one.split == two.split == split_of(squad_group("Normans"))
    assert EvalItem("c", "chat", "q", (), "user").split == split_of("c")  # no group: the id is its own group


def test_bootstrap_of_a_known_proportion_matches_the_normal_interval() -> None:
    # 50 right of 100: the 95% interval is about 0.5 +- 1.96 * sqrt(0.25 / 100) = [0.402, 0.598].
    interval = mean_interval([1.0] * 50 + [0.0] * 50)
    assert interval is not None and interval.n == 100 and interval.estimate == 0.5
    assert interval.low == pytest.approx(0.402, abs=0.015) and interval.high == pytest.approx(0.598, abs=0.015)
    assert mean_interval([1.0] * 50 + [0.0] * 50) == interval, "a fixed seed: the same file, the same interval"
    assert mean_interval([]) is None


def test_a_paired_difference_is_tighter_than_unpaired_and_says_when_it_excludes_zero() -> None:
    rng = random.Random(3)
    base = [float(rng.random() < 0.6) for _ in range(300)]
    better = [1.0 if value == 1.0 or rng.random() < 0.15 else 0.0 for value in base]
    difference = paired_difference(better, base)
    assert difference is not None and difference.estimate > 0 and difference.excludes_zero()
    first, second = mean_interval(better), mean_interval(base)
    assert first is not None and second is not None
    assert difference.high - difference.low < (first.high - first.low)
    same = paired_difference(base, base)
    assert same is not None and same.low == same.high == 0.0 and not same.excludes_zero()


def test_ratio_of_sums() -> None:
    ratio = ratio_of_sums([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert ratio is not None and ratio.estimate == pytest.approx(0.5) and ratio.low == ratio.high == pytest.approx(0.5)


def test_vectorised_apgr_equals_the_sweeps() -> None:
    rng = random.Random(7)
    weak, strong = {}, {}
    for index in range(120):
        scored = index % 6 != 0
        weak[str(index)] = {"confidence": round(rng.random(), 2), "can_escalate": index % 10 != 0, "route": "FACT",
                            "correct": float(rng.random() < 0.5) if scored else None}
        strong[str(index)] = {"correct": float(rng.random() < 0.7) if scored else None}
    expected = sweep(weak, strong).apgr
    ids = list(weak)
    value = apgr_of(np.array([weak[key]["confidence"] for key in ids]),
                    np.array([weak[key]["correct"] or 0.0 for key in ids]),
                    np.array([strong[key]["correct"] or 0.0 for key in ids]),
                    np.array([weak[key]["correct"] is not None for key in ids]),
                    np.array([weak[key]["can_escalate"] for key in ids]))
    assert expected is not None and value == pytest.approx(expected)


def test_the_leak_check_catches_a_planted_phrase_and_a_named_id(tmp_path: Path) -> None:
    item = EvalItem("squad:5733be284776f41900661182", "fact",
                    "To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?", ("x",), "squad-dev")
    clean = tmp_path / "clean.py"
    clean.write_text('EXEMPLARS = ("Who wrote Pride and Prejudice?",)\n')
    planted = tmp_path / "planted.py"
    planted.write_text('# tuned on: "did the Virgin Mary, allegedly, appear in 1858 in LOURDES"\n')
    named = tmp_path / "named.md"
    named.write_text("see item 5733be284776f41900661182 for why\n")
    leaks = find_leaks(source_files([tmp_path]), [item])
    assert sorted((Path(leak.path).name, leak.item_id) for leak in leaks) == [
        ("named.md", item.id), ("planted.py", item.id)]
    seven_words = tmp_path / "seven.py"
    seven_words.write_text("the Virgin Mary allegedly appear in 1858\n")
    assert find_leaks([seven_words], [item]) == []
    assert ("whom", "did", "the", "virgin", "mary", "allegedly", "appear", "in") in ngrams(item.question)


def test_the_code_hash_covers_what_decides_an_answer(tmp_path: Path) -> None:
    pipeline = {path.relative_to(PROJECT_ROOT).as_posix() for path in code_files(PIPELINE_CODE)}
    assert {"assistant/core/routing.py", "assistant/core/prompts.py", "assistant/core/confidence.py",
            "assistant/core/passages.py", "assistant/core/graph.py", "assistant/core/decision.py",
            "retrieval/retriever.py", "tools/calculator.py", "models/llama_cpp_backend.py",
            "eval/systems.py"} <= pipeline
    # the interfaces are not hashed: editing the server, MCP or the CLI never re-keys the cache
    assert not {path for path in pipeline if path.startswith("assistant/") and not path.startswith("assistant/core/")}
    direct = {path.relative_to(PROJECT_ROOT).as_posix() for path in code_files(DIRECT_CODE)}
    assert "assistant/core/routing.py" not in direct and "models/base.py" in direct
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "module.py"
    source.write_text("PROMPT = 'a'\n")
    before = code_hash(("pkg",), tmp_path)
    source.write_text("PROMPT = 'b'\n")
    assert code_hash(("pkg",), tmp_path) != before


def test_intervals_depend_on_the_items_not_their_order() -> None:
    from eval.results import summarize

    records = {f"q{index:03d}": {"correct": float(index % 3 == 0), "usage": []} for index in range(301)}
    keys = list(records)
    random.Random(1).shuffle(keys)
    shuffled = {key: records[key] for key in keys}
    assert list(shuffled) != list(records)
    assert summarize(shuffled)["accuracy_ci"] == summarize(records)["accuracy_ci"]
