"""REFERENCES.md S1/S2: code injection and resource exhaustion through the calculator fail safely and fast."""

from __future__ import annotations

import builtins
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sympy
import sympy.parsing.sympy_parser

from tools import (
    CalcParseError,
    CalcTimeLimitError,
    CalculatorError,
    MathDomainError,
    ResultTooLargeError,
    UnsupportedConstructError,
    calculate,
)
from tools.worker import CalculatorWorker

SENTINEL = Path("/tmp/calculator-sentinel-must-not-exist")

INJECTIONS = [
    f"__import__('os').system('touch {SENTINEL}')",
    f'__import__("os").system("touch {SENTINEL}")',
    "().__class__.__bases__",
    "().__class__.__bases__[0].__subclasses__()",
    "(1).__class__",
    "[x for x in ().__class__.__base__.__subclasses__()]",
    "lambda: 1",
    "lambda x: x",
    "'abc'",
    '"2" + "2"',
    "b'x'",
    "f'{1}'",
    "eval('1+1')",
    "exec('x=1')",
    "open('/etc/passwd')",
    "import os",
    "os.system('id')",
    "sympify('1+1')",
    "getattr(1, 'real')",
    "globals()",
    "__builtins__",
    "x if 1 else 2",
    "1 if 1 else 2",
    "{1: 2}",
    "{1, 2}",
    "[1, 2]",
    "(1, 2)",
    "a[0]",
    "x := 1",
    "1 < 2",
    "1 and 2",
    "~1",
    "1 | 2",
    "1 & 2",
    "1 << 2",
    "1; 2",
    "# comment",
    "\\x41",
    "1 @ 2",
    "Symbol('x')",
    "E.__class__",
    "pi.evalf",
    "sqrt(x=4)",
    "sqrt(*[4])",
    "print(1)",
    "exit()",
    "__import__",
    "_",
    "1.real",
]

EXHAUSTION = [
    "9**9**9",
    "((9**9)**9999)**9999",
    "factorial(10**9)",
    "factorial(10**100)",
    "10**10**10",
    "2**(2**64)",
    "(2**10**6) * (2**10**6)",
    "binomial(10**9, 5*10**8)",
    "lcm(2**60000, 3**60000 + 1)",
    "exp(10**100)",
    "sin(10**10**5)",
    "1e999999999",
    "sqrt(2) ** (10**9)",
    "(1/3) ** (10**9)",
    "solve x ** (10**9) = 2",
    "floor(pi * 10**10**6)",
    "round(pi, 10**9)",
    "root(2, 10**100)",
]


@pytest.fixture(autouse=True)
def _no_sentinel() -> Iterator[None]:
    SENTINEL.unlink(missing_ok=True)
    yield
    assert not SENTINEL.exists(), "an injected command ran"


@pytest.fixture
def forbid_text_evaluation(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if anything hands text to eval/exec/sympify/parse_expr/lambdify while it runs.

    eval/exec only count when given text: Python's import machinery execs code objects, which is fine.
    """
    calls: list[str] = []

    def trap(name: str) -> Any:
        original = getattr(builtins, name, None)

        def refuse(*args: object, **kwargs: object) -> Any:
            if original is not None and args and not isinstance(args[0], str | bytes):
                return original(*args, **kwargs)
            calls.append(name)
            raise AssertionError(f"{name} was called with text")

        return refuse

    monkeypatch.setattr(builtins, "eval", trap("eval"))
    monkeypatch.setattr(builtins, "exec", trap("exec"))
    monkeypatch.setattr(sympy, "sympify", trap("sympy.sympify"))
    monkeypatch.setattr(sympy, "lambdify", trap("sympy.lambdify"))
    monkeypatch.setattr(sympy, "parse_expr", trap("sympy.parse_expr"), raising=False)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", trap("parse_expr"))
    yield calls
    assert calls == []


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_is_refused_without_executing_anything(attack: str, forbid_text_evaluation: list[str]) -> None:
    started = time.monotonic()
    with pytest.raises(CalculatorError) as error:
        calculate(attack)
    assert isinstance(error.value, UnsupportedConstructError | CalcParseError)
    assert str(error.value)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("attack", EXHAUSTION)
def test_resource_exhaustion_is_refused_within_two_seconds(attack: str) -> None:
    started = time.monotonic()
    with pytest.raises(CalculatorError) as error:
        calculate(attack)
    elapsed = time.monotonic() - started
    refusals = ResultTooLargeError | CalcTimeLimitError | UnsupportedConstructError | MathDomainError
    assert isinstance(error.value, refusals), error.value
    assert elapsed < 2.0, f"{attack} took {elapsed:.2f}s"


def test_safe_arithmetic_never_evaluates_text(forbid_text_evaluation: list[str]) -> None:
    for expression in ("347 * 29", "sqrt(2) + 1/3", "15% of 240", "5!", "round(2.5)", "2**10000"):
        calculate(expression)


def test_the_parser_module_never_names_eval_or_sympify() -> None:
    root = Path(__file__).resolve().parents[2] / "tools"
    source = "\n".join(path.read_text() for path in root.glob("*.py"))
    for forbidden in ("sympify(", "parse_expr(", "eval(", "exec(", "lambdify(", "pickle"):
        assert forbidden not in source, forbidden


def test_input_length_and_depth_are_bounded() -> None:
    with pytest.raises(UnsupportedConstructError, match="too long"):
        calculate("1+" * 600 + "1")
    with pytest.raises(CalculatorError):
        calculate("(" * 300 + "1" + ")" * 300)
    with pytest.raises(CalculatorError):
        calculate("-" * 900 + "1")
    with pytest.raises(UnsupportedConstructError, match=r"too long|nested"):
        calculate("+".join(["1"] * 450))


@pytest.fixture
def worker() -> Iterator[CalculatorWorker]:
    instance = CalculatorWorker(time_limit_s=1.0, memory_mb=512)
    yield instance
    instance.close()


SLOW = "solve x^7 - 3*x^2 + x - 5 = 0"  # SymPy needs several seconds for this; the limit stops it


def test_worker_is_killed_at_the_time_limit_and_keeps_answering(worker: CalculatorWorker) -> None:
    assert worker.evaluate("1 + 1")["exact"] == "2"
    first_pid = worker.pid
    started = time.monotonic()
    with pytest.raises(CalcTimeLimitError, match="limit"):
        calculate(SLOW, worker=worker)
    assert time.monotonic() - started < 2.0
    assert worker.restarts == 1
    assert worker.evaluate("2 ** 100")["exact"] == str(2**100)
    assert worker.pid != first_pid


def test_worker_runs_under_an_address_space_cap(worker: CalculatorWorker) -> None:
    worker.evaluate("1")
    assert worker.pid is not None
    limits = Path(f"/proc/{worker.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert str(512 * 1024 * 1024) in line


def test_worker_survives_being_killed_from_outside(worker: CalculatorWorker) -> None:
    worker.evaluate("1")
    killed = worker.pid
    assert killed is not None
    subprocess.run(["kill", "-9", str(killed)], check=True)
    time.sleep(0.1)
    assert worker.evaluate("2 ** 5000")["exact"].endswith("(1,506 digits)")
    assert worker.pid not in (None, killed)


def test_small_calculations_stay_fast_while_the_worker_is_busy(worker: CalculatorWorker) -> None:
    worker.evaluate("1")
    def hostile() -> None:
        with pytest.raises(CalcTimeLimitError):
            calculate(SLOW, worker=worker)

    busy = threading.Thread(target=hostile)
    busy.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert calculate("347 * 29").exact == "10063"
    assert time.monotonic() - started < 0.1
    busy.join()


def test_the_worker_imports_nothing_but_the_calculator() -> None:
    code = "import sys, tools.worker; print(sorted(m for m in sys.modules if m.startswith(('torch', 'llama_cpp'))))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


_WORKER_TRAP = '''
import builtins, os
import sympy, sympy.parsing.sympy_parser
import tools.evaluation, tools.parsing  # imported before the traps: module set-up may exec text (namedtuple)

def _trap(name, original):
    def refuse(*args, **kwargs):
        if original is not None and args and not isinstance(args[0], (str, bytes)):
            return original(*args, **kwargs)
        with open(os.environ["CALCULATOR_TRAP_LOG"], "a") as log:
            log.write(name + "\\n")
        raise RuntimeError(name + " was called with text")
    return refuse

builtins.eval = _trap("eval", builtins.eval)
builtins.exec = _trap("exec", builtins.exec)
for _name in ("sympify", "lambdify", "parse_expr"):
    setattr(sympy, _name, _trap("sympy." + _name, None))
sympy.parsing.sympy_parser.parse_expr = _trap("parse_expr", None)
with open(os.environ["CALCULATOR_TRAP_LOG"], "a") as log:
    log.write("armed\\n")
'''


def test_the_worker_process_never_evaluates_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trap above only covers this process: large inputs run in the worker, so trap it there too."""
    from tools.calculator import needs_worker

    (tmp_path / "sitecustomize.py").write_text(_WORKER_TRAP)
    log = tmp_path / "trap.log"
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{Path(__file__).resolve().parents[2]}")
    monkeypatch.setenv("CALCULATOR_TRAP_LOG", str(log))
    worker = CalculatorWorker(time_limit_s=10)
    try:
        inputs = ["2**10000", "factorial(500)", "solve x^3 - 2*x - 5 = 0", "x^5 - x - 1 = 0",
                  "binomial(400, 200) / 7", *INJECTIONS[:4]]
        for expression in inputs:
            try:
                result = calculate(expression, worker=worker)
            except CalculatorError:
                continue
            assert result.evaluated_in == "worker", expression
        assert all(needs_worker(expression) for expression in inputs[:5])
    finally:
        worker.close()
    lines = log.read_text().splitlines()
    assert "armed" in lines, "the trap never reached the worker"
    assert set(lines) == {"armed"}, lines
    # The trap itself works: a process that does hand text to sympify is caught.
    subprocess.run([sys.executable, "-c", "import sympy; sympy.sympify('1 + 1')"], capture_output=True, check=False)
    assert "sympy.sympify" in log.read_text().splitlines()
