"""The eval runner with fake models: cache and resume (also after a kill), composition, reports, calibration, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest

from assistant.api import Assistant
from assistant.cli import main
from assistant.core.prompts import FACT_SYSTEM, PROGRAM_SYSTEM
from assistant.core.routing import RouteDecision
from assistant.core.settings import Settings
from eval.calibrate import set_toml_value
from eval.datasets import EvalItem, Kind, user_items
from eval.errors import EvalError
from eval.results import load_results
from eval.run import run_eval
from eval.runner import ItemCache, run_system, stratified_limit
from eval.systems import DIRECT_PROMPTS, DirectSystem, PipelineSystem, System, expand_systems
from models.base import Message
from models.fake import FakeChatModel
from retrieval.documents import Document
from retrieval.embedders import FakeEmbedder
from retrieval.retriever import Retriever
from tests.programs import program_reply

SUPER_BOWL = Document("sb50.txt", "Super Bowl 50 was an American football game. The Denver Broncos defeated the "
                      "Carolina Panthers 24-10 at Levi's Stadium.", "Super Bowl 50")
SUITE = [
    {"id": "won", "question": "Which team won Super Bowl 50?", "answers": ["Denver Broncos"], "kind": "fact"},
    {"id": "lost", "question": "Which team lost Super Bowl 50?", "answers": ["Carolina Panthers"], "kind": "fact"},
    {"id": "mul", "question": "What is 347 * 29?", "answers": ["10063"], "kind": "arithmetic"},
    {"id": "apples", "question": "Tom has 5 apples and buys 3 more. How many apples does he have now?",
     "answers": ["8"], "kind": "word_problem"},
    {"id": "hello", "question": "Write a friendly greeting for a new colleague.", "kind": "chat"},
]
ROUTES = {"won": "FACT", "lost": "FACT", "mul": "MATH", "apples": "MATH", "hello": "CHAT"}


class SuiteRouter:
    """Routes the suite's questions as labelled (the cascade router has its own tests)."""

    def __init__(self) -> None:
        self.by_question = {item["question"]: ROUTES[str(item["id"])] for item in SUITE}

    def route(self, question: str, previous: str | None = None) -> RouteDecision:
        route = self.by_question[question]
        if "*" in question:
            return RouteDecision("MATH", "calculator", "plain arithmetic", expression="347 * 29")
        return RouteDecision(route, "exemplars", "test")  # type: ignore[arg-type]


def _small(messages: Sequence[Message]) -> str:
    system, question = messages[0]["content"], messages[-1]["content"]
    if system == FACT_SYSTEM:
        # right about the winner, wrong (and unsupported by the passage) about the loser
        return "Denver Broncos [sb50.txt#0]" if "won" in question else "Seattle Seahawks"
    if system == PROGRAM_SYSTEM:
        return program_reply(("apples", "5 * 3"))
    return "Hi"


def _large(messages: Sequence[Message]) -> str:
    system, question = messages[0]["content"], messages[-1]["content"]
    if system == FACT_SYSTEM:
        return "Denver Broncos [sb50.txt#0]" if "won" in question else "Carolina Panthers [sb50.txt#0]"
    if system == PROGRAM_SYSTEM:
        return program_reply(("apples", "5 + 3"))
    if system in DIRECT_PROMPTS.values():
        if "347" in question:
            return "347 * 29 = 10062. Answer: 10062"
        if "apples" in question:
            return "5 + 3 = 8. Answer: 8"
        return "Denver Broncos" if "Super Bowl" in question else "Hello and welcome aboard!"
    return "Hello and welcome aboard!"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # the untrained (hand-weighted) FACT score, with the threshold these fakes were scripted for
    return Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "assistant": {"threshold": 0.5},
                                "retrieval": {"embedder": "fake", "knowledge_base": "none"}})


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in SUITE) + "\n", encoding="utf-8")
    return path


class Parts:
    """Fake models, a one-document index and the suite router, shared by the systems like SystemFactory does."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        # p=0.6 per token: an answer the passage supports clears the 0.5 threshold, an unsupported one does not
        self.small = FakeChatModel(name="small", parameters=630_000_000, price_per_million_tokens=0.05,
                                   responder=_small, default_probability=0.6)
        self.large = FakeChatModel(name="large", parameters=1_777_000_000, price_per_million_tokens=0.15,
                                   responder=_large)
        self.retriever = Retriever.open(tmp_path / "index", FakeEmbedder(), settings.retrieval)
        if not len(self.retriever.store):
            self.retriever.add_documents([SUPER_BOWL], progress=False)
        self.router = SuiteRouter()
        self.checkpoints = tmp_path / "threads.sqlite"

    def assistant(self, small: FakeChatModel, large: FakeChatModel) -> Assistant:
        return Assistant(small, large, self.router, self.retriever, self.settings,  # type: ignore[arg-type]
                         self.checkpoints)

    def build(self, name: str) -> System:
        if name == "large-only":
            return DirectSystem(name, "large", self.large, self.settings)
        if name == "small-only":
            return DirectSystem(name, "small", self.small, self.settings)
        if name == "routed-no-escalation":
            return PipelineSystem(name, ("small", "large"), self.assistant(self.small, self.large), self.settings)
        return PipelineSystem(name, ("large", "large"), self.assistant(self.large, self.large), self.settings)


@pytest.fixture
def parts(settings: Settings, tmp_path: Path) -> Parts:
    return Parts(settings, tmp_path)


def test_a_full_eval_with_fake_models(settings: Settings, parts: Parts, suite_file: Path, tmp_path: Path) -> None:
    outcome = run_eval(settings, suite=str(suite_file), systems=["large-only", "large-pipeline", "small-only",
                                                                  "routed", "routed-no-escalation", "oracle"],
                       limit=None, output=tmp_path / "out", progress=False, build=parts.build)
    summaries = outcome.results["summaries"]
    # 4 scored items (chat is routing and cost only)
    assert summaries["large-only"]["scored"] == 4 and summaries["large-only"]["items"] == 5
    assert summaries["large-only"]["accuracy"] == pytest.approx(2 / 4)   # wrong on 347*29 and on "lost"
    # wrong on "lost", and on the word problem: with escalation off the small model works it (and says "Hi")
    assert summaries["routed-no-escalation"]["accuracy"] == pytest.approx(2 / 4)
    assert summaries["large-pipeline"]["accuracy"] == 1.0
    assert summaries["routed"]["accuracy"] == 1.0  # "lost" escalated: unsupported answer, low confidence
    assert summaries["oracle"]["accuracy"] == 1.0
    routed = outcome.results["systems"]["routed"]
    assert routed["lost"]["escalated"] and not routed["won"]["escalated"]
    assert summaries["routed"]["flops"] < summaries["large-pipeline"]["flops"]
    assert outcome.results["routing"]["accuracy"] == 1.0
    assert {path.name for path in outcome.written} >= {"report.md", "cost_quality.png"}
    results_file = next(path for path in outcome.written if path.name.startswith("results_"))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| routed | 100.0 [100.0, 100.0] | 4 |" in report and "APGR" in report and "x large-only" in report
    assert "| routed | large-only | 4 |" in report  # the paired comparison table
    assert (tmp_path / "out" / "cost_quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # energy per answer, measured around each item, with its source named
    record = outcome.results["runs"]["large-only"]["won"]
    assert record["energy_joules"] > 0 and record["energy_source"].startswith("codecarbon")
    assert summaries["routed"]["energy_joules"] > 0 and "## Energy, speed and money per answer" in report
    assert "Energy source: codecarbon" in report and summaries["large-only"]["cost_per_1000_answers"] > 0
    # how well the FACT confidence predicts the small model's answers, with the reliability diagram
    quality = outcome.results["confidence"]
    assert quality["n"] == 2 and quality["auc"] == 1.0 and "expected calibration error" in report
    assert (tmp_path / "out" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the results file holds no dataset text, and alone re-renders the same numbers and report
    raw = results_file.read_text()
    assert "Which team won Super Bowl 50?" not in raw and "Carolina Panthers" in raw  # an answer, not a reference
    assert all(set(item) == {"kind", "source", "split"} for item in json.loads(raw)["items"].values())
    again = load_results(results_file)
    assert again["summaries"]["routed"] == summaries["routed"]
    assert again["comparisons"] == outcome.results["comparisons"]


def test_composed_routed_matches_the_real_graph_at_that_threshold(settings: Settings, parts: Parts,
                                                                  suite_file: Path, tmp_path: Path) -> None:
    outcome = run_eval(settings, suite=str(suite_file), systems=["routed"], limit=None, output=tmp_path / "out",
                       progress=False, build=parts.build)
    composed = outcome.results["systems"]["routed"]
    live = parts.assistant(FakeChatModel(name="small", responder=_small, default_probability=0.6),
                           FakeChatModel(name="large", responder=_large))
    for item in SUITE:
        answer = live.ask(str(item["question"]), escalation="auto", threshold=settings.assistant.threshold)
        record = composed[str(item["id"])]
        assert (record["text"], record["escalated"]) == (answer.text, answer.escalated), item["id"]
        assert [usage["tier"] for usage in record["usage"]] == [usage.tier for usage in answer.usage]


class CountingSystem:
    """Answers with the item id; counts calls; can fail or stop on chosen items."""

    def __init__(self, name: str = "small-only", stop_at: str | None = None, fail_on: str | None = None) -> None:
        self.name = name
        self.calls: list[str] = []
        self.stop_at = stop_at
        self.fail_on = fail_on

    def fingerprint(self) -> dict[str, Any]:
        return {"system": self.name, "version": "test"}

    def reusable(self, item: EvalItem, record: dict[str, Any]) -> bool:
        return True

    def answer(self, item: EvalItem) -> dict[str, Any]:
        if item.id == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(item.id)
        if item.id == self.fail_on:
            raise RuntimeError("the model crashed")
        return {"text": item.id, "usage": [], "wall_seconds": 0.0, "cpu_seconds": 0.0}


def _items(count: int) -> list[EvalItem]:
    return [EvalItem(f"q{index}", "arithmetic", f"What is {index} + 1?", (str(index + 1),), "test")
            for index in range(count)]


def test_runner_resumes_after_an_interrupt_without_repeating_items(tmp_path: Path) -> None:
    items = _items(6)
    first = CountingSystem(stop_at="q3")
    with pytest.raises(KeyboardInterrupt):
        run_system(first, items, tmp_path, progress=False)
    assert first.calls == ["q0", "q1", "q2"]
    second = CountingSystem()
    run = run_system(second, items, tmp_path, progress=False)
    assert second.calls == ["q3", "q4", "q5"] and (run.reused, run.computed) == (3, 3)
    assert sorted(run.records) == [item.id for item in items]
    third = CountingSystem()
    assert run_system(third, items, tmp_path, progress=False).reused == 6 and third.calls == []


def test_runner_ignores_a_torn_line_and_recomputes_that_item(tmp_path: Path) -> None:
    items = _items(3)
    run_system(CountingSystem(), items[:2], tmp_path, progress=False)
    cache_file = next(tmp_path.glob("small-only-*.jsonl"))
    with cache_file.open("a") as handle:
        handle.write('{"item_id": "q2", "question_sha": "')  # a crash in the middle of a write
    system = CountingSystem()
    run_system(system, items, tmp_path, progress=False)
    assert system.calls == ["q2"]


def test_errors_are_reported_not_cached(tmp_path: Path) -> None:
    items = _items(3)
    failing = CountingSystem(fail_on="q1")
    run = run_system(failing, items, tmp_path, progress=False)
    assert list(run.errors) == ["q1"] and "crashed" in run.errors["q1"] and sorted(run.records) == ["q0", "q2"]
    retry = CountingSystem()
    run_system(retry, items, tmp_path, progress=False)
    assert retry.calls == ["q1"]


def test_a_changed_question_or_fingerprint_is_not_served_from_the_cache(tmp_path: Path) -> None:
    items = _items(2)
    run_system(CountingSystem(), items, tmp_path, progress=False)
    changed = [EvalItem("q0", "arithmetic", "What is 100 + 1?", ("101",), "test"), items[1]]
    system = CountingSystem()
    run_system(system, changed, tmp_path, progress=False)
    assert system.calls == ["q0"]
    other = CountingSystem(name="large-only")
    run_system(other, items, tmp_path, progress=False)
    assert other.calls == ["q0", "q1"]


def test_a_turn_the_router_now_sends_elsewhere_is_recomputed(settings: Settings, parts: Parts, suite_file: Path,
                                                              tmp_path: Path) -> None:
    items = user_items(suite_file)
    first = run_system(parts.build("routed-no-escalation"), items, tmp_path / "cache", progress=False)
    moved = next(item for item in items if first.records[item.id]["route"] == "FACT")
    parts.router.by_question[moved.question] = "CHAT"
    again = run_system(parts.build("routed-no-escalation"), items, tmp_path / "cache", progress=False)
    assert (again.computed, again.reused) == (1, len(items) - 1)
    assert again.records[moved.id]["route"] == "CHAT"
    latest = run_system(parts.build("routed-no-escalation"), items, tmp_path / "cache", progress=False)
    assert (latest.computed, latest.records[moved.id]["route"]) == (0, "CHAT")  # the newest record wins


def test_two_runs_of_one_fingerprint_cannot_write_at_once(tmp_path: Path) -> None:
    with ItemCache(tmp_path, CountingSystem()).open(), pytest.raises(EvalError, match="another evaluation"), \
            ItemCache(tmp_path, CountingSystem()).open():
        pass


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from eval.datasets import EvalItem
from eval.runner import run_system

class Slow:
    name = "small-only"
    def fingerprint(self):
        return {"system": self.name, "version": "test"}
    def reusable(self, item, record):
        return True
    def answer(self, item):
        time.sleep(0.15)
        return {"text": item.id, "usage": [], "wall_seconds": 0.15, "cpu_seconds": 0.0}

items = [EvalItem(f"q{i}", "arithmetic", f"What is {i} + 1?", (str(i + 1),), "test") for i in range(40)]
run_system(Slow(), items, Path(sys.argv[1]), progress=False)
"""


def test_runner_resumes_after_being_killed(tmp_path: Path) -> None:
    script = tmp_path / "slow_run.py"
    script.write_text(KILL_SCRIPT)
    cache = tmp_path / "items"
    process = subprocess.Popen([sys.executable, str(script), str(cache)], cwd=Path(__file__).parents[2],
                               env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])})
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline:
        files = list(cache.glob("small-only-*.jsonl"))
        done = len(files[0].read_text().splitlines()) if files else 0
        if done >= 5:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert 5 <= done < 40
    before = {json.loads(line)["item_id"] for line in next(cache.glob("small-only-*.jsonl")).read_text().splitlines()}
    system = CountingSystem()
    run = run_system(system, _items(40), cache, progress=False)
    assert set(system.calls).isdisjoint(before) and len(system.calls) == 40 - len(before)
    lines = next(cache.glob("small-only-*.jsonl")).read_text().splitlines()
    assert sorted(json.loads(line)["item_id"] for line in lines) == sorted(f"q{index}" for index in range(40))
    assert len(run.records) == 40


def test_stratified_limit_keeps_each_kinds_share() -> None:
    items = ([EvalItem(f"f{i}", "fact", "q", ("a",), "t") for i in range(40)]
             + [EvalItem(f"a{i}", "arithmetic", "q", ("1",), "t") for i in range(24)]
             + [EvalItem(f"w{i}", "word_problem", "q", ("1",), "t") for i in range(20)]
             + [EvalItem(f"c{i}", "chat", "q", (), "t") for i in range(16)])
    chosen = stratified_limit(items, 10)
    assert [item.id for item in chosen] == ["f0", "f1", "f2", "f3", "a0", "a1", "w0", "w1", "c0", "c1"]
    assert len(stratified_limit(items, 7)) == 7
    assert stratified_limit(items, None) == items
    with pytest.raises(EvalError):
        stratified_limit(items, 0)


def test_expand_systems_adds_what_composed_systems_need() -> None:
    assert expand_systems(["routed"]) == (["routed-no-escalation", "large-pipeline"], ["routed"])
    assert expand_systems(["large-only", "oracle"])[0] == ["routed-no-escalation", "large-pipeline", "large-only"]
    with pytest.raises(EvalError, match="did you mean 'routed'"):
        expand_systems(["rooted"])


def test_set_toml_value_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "assistant.toml"
    path.write_text("# my settings\n[assistant]\nthreshold = 0.5  # old\nfact_k = 7\n\n[server]\nport = 9000\n")
    set_toml_value(path, "assistant", "threshold", "0.4321")
    text = path.read_text()
    assert "# my settings" in text and "fact_k = 7" in text and "port = 9000" in text
    loaded = Settings.load(path)
    assert (loaded.assistant.threshold, loaded.assistant.fact_k, loaded.server.port) == (0.4321, 7, 9000)
    fresh = tmp_path / "new.toml"
    set_toml_value(fresh, "assistant", "threshold", "0.3")
    assert Settings.load(fresh).assistant.threshold == 0.3
    server_only = tmp_path / "server.toml"
    server_only.write_text("[server]\nport = 9000\n")
    set_toml_value(server_only, "assistant", "threshold", "0.2")
    assert Settings.load(server_only).assistant.threshold == 0.2


def test_report_and_calibrate_from_the_command_line(settings: Settings, parts: Parts, suite_file: Path,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    run_eval(settings, suite=str(suite_file), systems=["routed", "large-only"], limit=None, output=out,
             progress=False, build=parts.build)
    (out / "report.md").unlink()
    assert main(["eval", "report", str(out)]) == 0
    assert "| routed |" in (out / "report.md").read_text()
    assert load_results(out)["meta"]["chat_start"] == settings.assistant.chat_start
    assert main(["eval", "report", str(out), "--chat-start", "large"]) == 2  # never over the run's own results
    assert "--output" in capsys.readouterr().err
    assert main(["eval", "report", str(out), "--chat-start", "large", "--output", str(tmp_path / "again")]) == 0
    again = load_results(tmp_path / "again")
    assert again["meta"]["chat_start"] == "large" and again["meta"]["recomposed"]["from"].startswith(str(out))
    toml = tmp_path / "assistant.toml"
    assert main(["eval", "calibrate", "--target-accuracy", "1.0", "--results", str(out),
                 "--settings-file", str(toml)]) == 0
    threshold = Settings.load(toml).assistant.threshold
    assert "accuracy 100.0%" in capsys.readouterr().out
    # the threshold reaches the target: the "lost" turn (its confidence is below) escalates
    lost = load_results(out)["runs"]["routed-no-escalation"]["lost"]
    assert lost["confidence"] < threshold
    assert main(["eval", "calibrate", "--target-escalation", "0", "--results", str(out),
                 "--settings-file", str(toml)]) == 0
    assert Settings.load(toml).assistant.threshold <= lost["confidence"]


def test_eval_cli_errors_say_how_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "run", "--suite", "mixd"]) == 2
    assert "did you mean 'mixed-dev'" in capsys.readouterr().err
    assert main(["eval", "run", "--systems", "rooted"]) == 2
    assert "did you mean 'routed'" in capsys.readouterr().err
    assert main(["eval", "report", str(tmp_path / "nothing")]) == 2
    assert "eval run" in capsys.readouterr().err
    assert main(["eval", "calibrate", "--target-accuracy", "2", "--results", str(tmp_path)]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_user_suite_file_loads_all_kinds(suite_file: Path) -> None:
    items = user_items(suite_file)
    assert [item.kind for item in items] == ["fact", "fact", "arithmetic", "word_problem", "chat"]


def test_items_a_system_failed_on_are_left_out_and_named(settings: Settings, parts: Parts, suite_file: Path,
                                                         tmp_path: Path) -> None:
    def build(name: str) -> System:
        system = parts.build(name)
        if name == "large-only":
            failing = CountingSystem(name="large-only", fail_on="won")
            failing.fingerprint = system.fingerprint  # type: ignore[method-assign]
            return failing
        return system

    outcome = run_eval(settings, suite=str(suite_file), systems=["large-only", "routed"], limit=None,
                       output=tmp_path / "out", progress=False, build=build)
    assert outcome.runs["large-only"].errors.keys() == {"won"}
    assert "won" not in outcome.results["items"] and len(outcome.results["items"]) == 4
    assert "1 items are left out of every system" in (tmp_path / "out" / "report.md").read_text()
    assert "goal" in (tmp_path / "out" / "report.md").read_text()


def test_the_closed_book_baseline_gets_the_prompt_for_each_kind(settings: Settings, parts: Parts) -> None:
    assert set(DIRECT_PROMPTS) == set(get_args(Kind))
    baseline = DirectSystem("large-only", "large", parts.large, settings)
    for kind in get_args(Kind):
        baseline.answer(EvalItem(f"x-{kind}", kind, "How many apples?", ("8",), "test"))
        assert parts.large.calls[-1].messages[0] == {"role": "system", "content": DIRECT_PROMPTS[kind]}
    assert "step by step" in DIRECT_PROMPTS["word_problem"]
    assert baseline.fingerprint()["prompts"] == DIRECT_PROMPTS


def test_a_record_computed_by_older_code_is_recomputed(settings: Settings, parts: Parts, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import eval.systems

    root = tmp_path / "code"
    shutil.copytree(eval.systems.PROJECT_ROOT / "models", root / "models")
    for part in ("eval/systems.py", "assistant/core/prompts.py"):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(eval.systems.PROJECT_ROOT / part, root / part)
    monkeypatch.setattr(eval.systems, "PROJECT_ROOT", root)
    items = _items(2)
    baseline = DirectSystem("large-only", "large", parts.large, settings)
    assert run_system(baseline, items, tmp_path / "cache", progress=False).computed == 2
    assert run_system(baseline, items, tmp_path / "cache", progress=False).reused == 2
    with (root / "models" / "base.py").open("a") as handle:
        handle.write("\n# a change to the model layer\n")
    again = run_system(baseline, items, tmp_path / "cache", progress=False)
    assert (again.reused, again.computed) == (0, 2)
    with (root / "assistant" / "core" / "prompts.py").open("a") as handle:  # the baselines' prompts live there
        handle.write("\n# a change to a prompt\n")
    assert run_system(baseline, items, tmp_path / "cache", progress=False).computed == 2


def test_the_headline_table_comes_from_results_files(settings: Settings, parts: Parts, suite_file: Path,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    run_eval(settings, suite=str(suite_file), systems=["routed", "large-only"], limit=None, output=out,
             progress=False, build=parts.build)
    assert main(["eval", "headline", str(out)]) == 0
    table = capsys.readouterr().out
    rows = {line.split(" | ")[1]: line for line in table.splitlines()[2:]}
    assert set(rows) == {"large-only", "routed-no-escalation", "routed", "large-pipeline"}
    assert "| large-only | 4 | 50.0 [" in rows["large-only"] and rows["large-only"].endswith("| - | 1.00x | 1.00x |")
    # routed: 100% against large-only's 50% on the same 4 items, a paired difference of +50 points
    assert "| routed | 4 | 100.0 [100.0, 100.0] | 50.0 [" in rows["routed"]


def test_a_limited_subset_spreads_over_a_kinds_sources() -> None:
    # 20 arithmetic tasks listed task by task: a subset of 6 must not be six items of the first (easiest) task
    items = [EvalItem(f"{task}:{index}", "arithmetic", "q", ("1",), f"bigbench-arithmetic/{task}")
             for task in ("1_digit", "2_digit", "3_digit") for index in range(4)]
    items += [EvalItem(f"f{index}", "fact", "q", ("a",), "squad-dev") for index in range(12)]
    chosen = stratified_limit(items, 12)
    arithmetic = [item.id for item in chosen if item.kind == "arithmetic"]
    assert arithmetic == ["1_digit:0", "1_digit:1", "2_digit:0", "2_digit:1", "3_digit:0", "3_digit:1"]
    assert [item.id for item in chosen if item.kind == "fact"] == [f"f{index}" for index in range(6)]


def test_an_evaluation_index_built_by_older_reading_code_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The index of a suite's documents is keyed by the code that chunks and embeds them, not only by the documents
    (an ordered list's numbers once vanished from chunks; the old index would have kept them vanished)."""
    import eval.run

    documents = [Document("a.md", "1. first\n2. second", "a")]
    before = eval.run.scoped_index_name(documents, "docs-dev")
    assert eval.run.scoped_index_name(list(reversed(documents)), "docs-dev") == before
    assert eval.run.scoped_index_name([Document("a.md", "1. first", "a")], "docs-dev") != before
    monkeypatch.setattr(eval.run, "code_hash", lambda parts: "changed reading code")
    assert eval.run.scoped_index_name(documents, "docs-dev") != before


class SlowSystem(CountingSystem):
    """Takes 50 ms an answer and records how many answers were in flight at once."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def answer(self, item: EvalItem) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(0.05)
            return super().answer(item)
        finally:
            with self._lock:
                self.in_flight -= 1


def _stable(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in ("wall_seconds", "cpu_seconds")
            and not key.startswith("energy")}


def test_workers_answer_items_at_once_with_the_records_of_a_sequential_run(tmp_path: Path) -> None:
    items = _items(12)
    sequential = run_system(SlowSystem(), items, tmp_path / "one", progress=False)
    parallel_system = SlowSystem(fail_on="q5")
    parallel = run_system(parallel_system, items, tmp_path / "four", progress=False, workers=4)
    assert 1 < parallel_system.peak <= 4
    assert list(parallel.errors) == ["q5"] and parallel.computed == 11
    assert {key: _stable(value) for key, value in parallel.records.items()} == {
        key: _stable(value) for key, value in sequential.records.items() if key != "q5"}
    resumed = SlowSystem()
    assert run_system(resumed, items, tmp_path / "four", progress=False, workers=4).reused == 11
    assert resumed.calls == ["q5"]
    with pytest.raises(EvalError, match="--workers 0"):
        run_system(SlowSystem(), items, tmp_path / "zero", progress=False, workers=0)


class ProcessSystem(CountingSystem):
    """Answers with the item id and the answering process's id; exits the process abruptly on ``die_on``."""

    def __init__(self, die_on: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.die_on = die_on

    def answer(self, item: EvalItem) -> dict[str, Any]:
        if item.id == self.die_on:
            os._exit(9)  # as a worker killed by the kernel for memory would
        time.sleep(0.2)
        return {**super().answer(item), "pid": os.getpid()}


@dataclass(frozen=True)
class BuildProcessSystem:
    """The picklable recipe each worker process builds its own ProcessSystem from."""

    fail_on: str | None = None
    die_on: str | None = None

    def __call__(self) -> System:
        return ProcessSystem(fail_on=self.fail_on, die_on=self.die_on)


def test_worker_processes_answer_with_their_own_system_into_the_parents_cache(tmp_path: Path) -> None:
    items = _items(6)
    sequential = run_system(CountingSystem(), items, tmp_path / "one", progress=False)
    parent = CountingSystem()
    run = run_system(parent, items, tmp_path / "two", progress=False, workers=2,
                     worker_build=BuildProcessSystem(fail_on="q2"))
    assert parent.calls == []  # every answer came from a worker process
    assert list(run.errors) == ["q2"] and "the model crashed" in run.errors["q2"] and run.computed == 5
    pids = {record.pop("pid") for record in run.records.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {key: _stable(value) for key, value in run.records.items()} == {
        key: _stable(value) for key, value in sequential.records.items() if key != "q2"}
    resumed = CountingSystem()  # the workers' records are in the parent's cache, under its fingerprint
    assert run_system(resumed, items, tmp_path / "two", progress=False).reused == 5 and resumed.calls == ["q2"]


def test_a_worker_process_that_dies_stops_the_run_with_what_it_answered_kept(tmp_path: Path) -> None:
    items = _items(5)
    with pytest.raises(EvalError, match="worker process died") as raised:
        run_system(CountingSystem(), items, tmp_path, progress=False, workers=2,
                   worker_build=BuildProcessSystem(die_on="q3"))
    assert "run the same command again" in str(raised.value.hint)
    resumed = CountingSystem()
    run = run_system(resumed, items, tmp_path, progress=False)
    assert "q3" in resumed.calls and sorted(run.records) == [item.id for item in items]


def test_an_interrupt_with_workers_keeps_what_finished(tmp_path: Path) -> None:
    items = _items(8)
    with pytest.raises(KeyboardInterrupt):
        run_system(SlowSystem(stop_at="q4"), items, tmp_path, progress=False, workers=2)
    resumed = SlowSystem()
    run = run_system(resumed, items, tmp_path, progress=False)
    assert run.reused >= 3 and sorted(run.records) == [item.id for item in items]
    assert "q4" in resumed.calls


def test_a_run_with_workers_has_the_answers_of_one_worker_and_says_how_it_ran(settings: Settings, parts: Parts,
                                                                              suite_file: Path, tmp_path: Path) -> None:
    systems = ["routed", "large-only", "small-only"]
    one = run_eval(settings, suite=str(suite_file), systems=systems, limit=None, output=tmp_path / "one",
                   progress=False, build=parts.build)
    settings.cache_dir = tmp_path / "other-cache"  # nothing reused: every answer computed again, three at a time
    three = run_eval(settings, suite=str(suite_file), systems=systems, limit=None, output=tmp_path / "three",
                     progress=False, build=parts.build, workers=3)
    assert sum(run.computed for run in three.runs.values()) == sum(run.computed for run in one.runs.values()) > 0
    for name in systems:
        assert {item: record["text"] for item, record in three.results["systems"][name].items()} == {
            item: record["text"] for item, record in one.results["systems"][name].items()}, name
    assert three.results["meta"]["workers"] == 3 and one.results["meta"]["workers"] == 1
    assert "Answered 3 items at a time" in (tmp_path / "three" / "report.md").read_text()
    assert "items at a time" not in (tmp_path / "one" / "report.md").read_text()
