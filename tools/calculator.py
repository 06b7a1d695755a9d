"""The calculator's public API: ``calculate(expression) -> CalcResult``.

Inputs are parsed by the whitelist parser (never eval/sympify). Inputs proven small by
:func:`tools.bounds.is_small` are evaluated in this process (well under a millisecond or two); anything else goes
to a warm worker process that is killed if it exceeds the time limit and runs under an address-space cap.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tools.bounds import is_small
from tools.errors import CalculatorError
from tools.evaluation import evaluate
from tools.parsing import parse
from tools.worker import CalculatorWorker, default_worker


@dataclass(frozen=True)
class CalcResult:
    """An answer of the calculator.

    ``exact`` is SymPy's exact rendering ("10063", "1/3", "sqrt(2)", "x = 2"), ``decimal`` a decimal rendering with
    15 significant digits, ``approx`` the value as a float when it is a finite real number, ``expression`` the
    normalised input, ``solutions`` the exact solutions of an equation, ``evaluated_in`` where it ran.
    """

    expression: str
    exact: str
    decimal: str
    approx: float | None = None
    solutions: tuple[str, ...] = field(default_factory=tuple)
    evaluated_in: Literal["process", "worker"] = "process"
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        data = asdict(self)
        data["solutions"] = list(self.solutions)
        return data

    def __str__(self) -> str:
        if self.decimal == self.exact:
            return self.exact
        return f"{self.exact} ≈ {self.decimal}"


def calculate(expression: str, *, worker: CalculatorWorker | None = None) -> CalcResult:
    """Evaluate calculator text exactly; raises a :class:`tools.errors.CalculatorError` subclass on failure."""
    started = time.perf_counter()
    parsed = parse(expression)
    if is_small(parsed):
        try:
            reply = evaluate(parsed)
        except CalculatorError:
            raise
        except Exception as error:  # a SymPy failure must still reach the caller as a CalculatorError
            raise CalculatorError(f"the calculation failed: {type(error).__name__}: {error}") from error
        where: Literal["process", "worker"] = "process"
    else:
        reply = (worker or default_worker()).evaluate(parsed.text)
        where = "worker"
    return CalcResult(
        expression=reply["expression"],
        exact=reply["exact"],
        decimal=reply["decimal"],
        approx=reply["approx"],
        solutions=tuple(reply["solutions"]),
        evaluated_in=where,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def warm_up() -> None:
    """Start the worker process now so the first large calculation does not wait for SymPy to import."""
    default_worker().start()


def needs_worker(expression: str) -> bool:
    """True when ``expression`` would run in the worker process (not proven small; a parse error is cheap)."""
    try:
        return not is_small(parse(expression))
    except CalculatorError:
        return False
