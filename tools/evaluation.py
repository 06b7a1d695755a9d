"""A validated expression tree -> SymPy objects -> exact and decimal renderings.

SymPy objects are built directly from the tree (``sympy.Integer``, ``sympy.Rational``, ``sympy.sqrt``...);
no text ever reaches ``sympify``/``parse_expr``. Before an operation that can grow numbers (powers, products,
factorials, binomials, lcm) the size of its result is estimated from the operands (b*log2(a) for a**b) and
refused above :data:`MAX_RESULT_BITS`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import sympy
from sympy.core.evalf import PrecisionExhausted

from tools.errors import CalculatorError, MathDomainError, ResultTooLargeError
from tools.parsing import BinaryOp, Name, Negate, Node, Number, ParsedInput

MAX_RESULT_BITS = 100_000
MAX_PRINT_DIGITS = 1000
MAX_PRINT_CHARS = 2000
DECIMAL_DIGITS = 15
MAX_EXP_ARGUMENT = 10**6
MAX_UNKNOWN_DEGREE = 100
_DIGITS_PER_BIT = math.log10(2)

Evaluated = dict[str, Any]


def _too_large(what: str, bits: float) -> ResultTooLargeError:
    digits = bits * _DIGITS_PER_BIT
    limit = int(MAX_RESULT_BITS * _DIGITS_PER_BIT)
    return ResultTooLargeError(f"{what} would have about {digits:,.0f} digits; the limit is {limit:,}")


def _bits(value: sympy.Basic) -> int:
    """Size of an exact rational: the bits of the larger of its numerator and denominator."""
    return int(max(abs(value.p).bit_length(), value.q.bit_length()))


def _log2_magnitude(value: sympy.Expr) -> float:
    """log2 |value| for a numeric (possibly irrational or complex) value."""
    if value.is_Rational:
        if value == 0:
            return -math.inf
        return math.log2(abs(int(value.p))) - math.log2(int(value.q))
    approximation = sympy.N(abs(value), 15)
    if approximation == 0:
        return -math.inf
    if not approximation.is_Number:
        raise MathDomainError(f"cannot estimate the size of {value}")
    return float(sympy.log(approximation, 2).evalf(15))


def _check_size(value: sympy.Expr, what: str) -> sympy.Expr:
    coefficient = value if value.is_Rational else value.as_coeff_Mul()[0]
    if coefficient.is_Rational and _bits(coefficient) > MAX_RESULT_BITS:
        raise _too_large(what, _bits(coefficient))
    return value


def _as_integer(value: sympy.Expr, function: str) -> int:
    if not value.is_Integer:
        raise MathDomainError(f"{function}() needs whole numbers, got {_short(value)}")
    return int(value)


def _short(value: sympy.Expr) -> str:
    try:
        text = str(value)
    except ValueError:
        return "a very large number"
    return text if len(text) <= 60 else text[:57] + "..."


class _Evaluator:
    def __init__(self, symbols: dict[str, sympy.Symbol]) -> None:
        self.symbols = symbols

    def evaluate(self, node: Node) -> sympy.Expr:
        if isinstance(node, Number):
            return sympy.Rational(node.value.numerator, node.value.denominator)
        if isinstance(node, Name):
            if node.name == "pi":
                return sympy.pi
            if node.name == "e":
                return sympy.E
            return self.symbols[node.name]
        if isinstance(node, Negate):
            return -self.evaluate(node.operand)
        if isinstance(node, BinaryOp):
            return self._binary(node.op, self.evaluate(node.left), self.evaluate(node.right))
        return self._call(node.function, [self.evaluate(argument) for argument in node.args])

    def _binary(self, op: str, left: sympy.Expr, right: sympy.Expr) -> sympy.Expr:
        if op == "**":
            return self._power(left, right)
        if left.is_Rational and right.is_Rational:
            both_integers = left.is_Integer and right.is_Integer
            bits = max(_bits(left), _bits(right)) + 1 if both_integers and op in "+-" else _bits(left) + _bits(right)
            if bits > MAX_RESULT_BITS:
                raise _too_large("the result", bits)
        if op in ("/", "//", "%") and right.is_zero:
            raise MathDomainError("division by zero")
        if op in ("//", "%") and not (left.is_real and right.is_real):
            raise MathDomainError(f"'{op}' needs real numbers")
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        elif op == "/":
            result = left / right
        elif op == "//":
            result = sympy.floor(left / right)
        else:
            result = sympy.Mod(left, right)
        return _check_size(result, "the result")

    def _power(self, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        if base.is_zero and exponent.is_extended_negative:
            raise MathDomainError("division by zero (0 raised to a negative power)")
        if base.free_symbols or exponent.free_symbols:
            if exponent.free_symbols or not exponent.is_Rational or abs(exponent) > MAX_UNKNOWN_DEGREE:
                raise ResultTooLargeError(f"powers of the unknown are limited to degree {MAX_UNKNOWN_DEGREE}")
            return base**exponent
        if base.is_Rational and base in (0, 1, -1):
            pass
        elif exponent.is_Rational:
            if base.is_Rational:  # numerator and denominator are both raised to the power
                magnitude = math.log2(abs(int(base.p))) + math.log2(int(base.q))
            else:
                magnitude = abs(_log2_magnitude(base))
            bits = abs(float(exponent)) * magnitude
            if bits > MAX_RESULT_BITS:
                raise _too_large("the power", bits)
        else:
            bits = abs(float(sympy.N(exponent, 15))) * abs(_log2_magnitude(base)) if exponent.is_real else 0.0
            if bits > MAX_RESULT_BITS:
                raise _too_large("the power", bits)
        return _check_size(base**exponent, "the power")

    def _call(self, function: str, args: list[sympy.Expr]) -> sympy.Expr:
        x = args[0]
        if function in ("exp", "sin", "cos", "tan", "asin", "acos", "atan", "floor", "ceil", "round"):
            self._require_moderate(function, x)
        if function == "sqrt":
            return sympy.sqrt(x)
        if function == "cbrt":
            return sympy.real_root(x, 3) if x.is_real else sympy.root(x, 3)
        if function == "root":
            degree = _as_integer(args[1], "root")
            if not 1 <= degree <= 10**6:
                raise MathDomainError("root(x, n) needs a whole number n between 1 and 1,000,000")
            return sympy.real_root(x, degree) if x.is_real else sympy.root(x, degree)
        if function == "exp":
            return sympy.exp(x)
        if function in ("log", "ln", "log10", "log2"):
            return self._log(function, args)
        if function in ("sin", "cos", "tan", "asin", "acos", "atan"):
            return getattr(sympy, function)(x)
        if function == "abs":
            return sympy.Abs(x)
        if function == "floor":
            return sympy.floor(x)
        if function == "ceil":
            return sympy.ceiling(x)
        if function == "round":
            return self._round(x, args[1] if len(args) > 1 else sympy.Integer(0))
        if function == "factorial":
            return self._factorial(x)
        if function == "binomial":
            return self._binomial(x, args[1])
        if function in ("gcd", "lcm"):
            return self._gcd_lcm(function, args)
        return self._min_max(function, args)

    def _require_moderate(self, function: str, x: sympy.Expr) -> None:
        """Arguments whose evaluation would need huge precision are refused before SymPy tries."""
        if not x.is_number:
            return
        log2_size = _log2_magnitude(x)
        if function == "exp" and log2_size > math.log2(MAX_EXP_ARGUMENT):
            raise ResultTooLargeError(f"exp(x) is limited to |x| <= {MAX_EXP_ARGUMENT:,}")
        if log2_size > MAX_RESULT_BITS:
            raise _too_large(f"the argument of {function}()", log2_size)

    def _log(self, function: str, args: list[sympy.Expr]) -> sympy.Expr:
        x = args[0]
        if x.is_zero:
            raise MathDomainError(f"{function}(0) is undefined")
        base = {"log10": sympy.Integer(10), "log2": sympy.Integer(2)}.get(function)
        if function == "log" and len(args) == 2:
            base = args[1]
            if base.is_zero or base == 1:
                raise MathDomainError(f"a logarithm's base cannot be {base}")
        return sympy.log(x) if base is None else sympy.log(x, base)

    def _round(self, x: sympy.Expr, places_value: sympy.Expr) -> sympy.Expr:
        places = _as_integer(places_value, "round")
        if abs(places) > MAX_PRINT_DIGITS:
            raise MathDomainError(f"round(x, n) needs |n| <= {MAX_PRINT_DIGITS}")
        if not x.is_real:
            raise MathDomainError("round() needs a real number")
        scale = sympy.Integer(10) ** places
        # Half away from zero, as on a pocket calculator (Python's round() goes to even).
        magnitude = sympy.floor(sympy.Abs(x) * scale + sympy.Rational(1, 2)) / scale
        return -magnitude if x.is_negative else magnitude

    def _factorial(self, x: sympy.Expr) -> sympy.Expr:
        n = _as_integer(x, "factorial")
        if n < 0:
            raise MathDomainError("factorial() is defined for whole numbers >= 0")
        bits = math.lgamma(n + 1) / math.log(2) if n < 10**15 else math.inf
        if bits > MAX_RESULT_BITS:
            raise _too_large(f"factorial({n})", bits)
        return sympy.factorial(n)

    def _binomial(self, x: sympy.Expr, y: sympy.Expr) -> sympy.Expr:
        n, k = _as_integer(x, "binomial"), _as_integer(y, "binomial")
        if n < 0 or k < 0:
            raise MathDomainError("binomial(n, k) is defined for whole numbers n, k >= 0")
        if k > n:
            return sympy.Integer(0)
        smaller = min(k, n - k)
        bits = smaller * math.log2(n) if n > 1 else 0.0
        if bits > MAX_RESULT_BITS:
            precise = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)
            if precise > MAX_RESULT_BITS:
                raise _too_large(f"binomial({n}, {k})", precise)
        return sympy.binomial(n, k)

    def _gcd_lcm(self, function: str, args: list[sympy.Expr]) -> sympy.Expr:
        numbers = [_as_integer(argument, function) for argument in args]
        if function == "gcd":
            return sympy.Integer(math.gcd(*numbers))
        bits = sum(abs(number).bit_length() for number in numbers)
        if bits > MAX_RESULT_BITS:
            raise _too_large("lcm()", bits)
        return sympy.Integer(math.lcm(*numbers))

    def _min_max(self, function: str, args: list[sympy.Expr]) -> sympy.Expr:
        if not all(argument.is_real for argument in args):
            raise MathDomainError(f"{function}() needs real numbers")
        return sympy.Min(*args) if function == "min" else sympy.Max(*args)


def _check_defined(value: sympy.Expr) -> sympy.Expr:
    if value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise MathDomainError("the result is undefined (division by zero or a pole of a function)")
    return value


# ---- rendering -----------------------------------------------------------------------------------

def _digit_count(integer: int) -> int:
    integer = abs(integer)
    if integer < 10:
        return 1
    digits = int(integer.bit_length() * _DIGITS_PER_BIT) + 1
    return digits - 1 if integer < 10 ** (digits - 1) else digits


def _integer_text(integer: int) -> str:
    digits = _digit_count(integer)
    if digits <= MAX_PRINT_DIGITS:
        return str(integer)
    sign = "-" if integer < 0 else ""
    integer = abs(integer)
    leading = str(integer // 10 ** (digits - 20))
    trailing = str(integer % 10**10).zfill(10)
    return f"{sign}{leading}…{trailing} ({digits:,} digits)"


def _trim_zeros(text: str) -> str:
    """'0.300000000000000' -> '0.3'; '1.50000000000000e+30' -> '1.5e+30'."""
    def shorten(match: re.Match[str]) -> str:
        return f"{match.group(1)}.{match.group(2)}" if match.group(2) else match.group(1)

    return re.sub(r"(\d)\.(\d*?)0+(?=$|e|\D)", shorten, text)


def exact_text(value: sympy.Expr) -> str:
    """SymPy's exact rendering, with huge integers abbreviated and long text cut."""
    if value.is_Integer:
        return _integer_text(int(value))
    if value.is_Rational:
        return f"{_integer_text(int(value.p))}/{_integer_text(int(value.q))}"
    try:
        text = str(value)
    except ValueError:  # an integer inside the expression is beyond Python's int->str limit
        return f"≈ {decimal_text(value)}"
    return text if len(text) <= MAX_PRINT_CHARS else text[:MAX_PRINT_CHARS] + "…"


def decimal_text(value: sympy.Expr) -> str:
    """A decimal rendering with DECIMAL_DIGITS significant digits (integers that fit are printed whole)."""
    if value.is_Integer and _digit_count(int(value)) <= DECIMAL_DIGITS:
        return str(int(value))
    real, imaginary = (sympy.N(part, DECIMAL_DIGITS) for part in value.as_real_imag())
    real_text = _trim_zeros(str(real))
    if imaginary == 0:
        return real_text
    imaginary_text = _trim_zeros(str(abs(imaginary)))
    imaginary_text = "" if imaginary_text == "1" else imaginary_text + "*"
    if real == 0:
        return f"{'-' if imaginary < 0 else ''}{imaginary_text}I"
    return f"{real_text} {'-' if imaginary < 0 else '+'} {imaginary_text}I"


def _approximation(value: sympy.Expr) -> float | None:
    if not value.is_real:
        return None
    try:
        number = float(value)
    except (TypeError, OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _evaluated(expression: str, value: sympy.Expr) -> Evaluated:
    return {
        "expression": expression,
        "exact": exact_text(value),
        "decimal": decimal_text(value),
        "approx": _approximation(value),
        "solutions": [],
    }


def _solve(parsed: ParsedInput) -> Evaluated:
    assert parsed.unknown is not None and parsed.right is not None
    unknown = sympy.Symbol(parsed.unknown)
    evaluator = _Evaluator({parsed.unknown: unknown})
    difference = sympy.expand(evaluator.evaluate(parsed.left) - evaluator.evaluate(parsed.right))
    if difference == 0:
        message = f"every value of {parsed.unknown} is a solution"
        return {"expression": parsed.text, "exact": message, "decimal": message, "approx": None, "solutions": []}
    try:
        solutions = [_check_defined(solution) for solution in sympy.solve(difference, unknown)]
    except NotImplementedError:
        raise CalculatorError(f"cannot solve {parsed.text} exactly") from None
    if not solutions:
        return {"expression": parsed.text, "exact": "no solution", "decimal": "no solution", "approx": None,
                "solutions": []}
    exact = [exact_text(solution) for solution in solutions]
    real = [_approximation(solution) for solution in solutions if solution.is_real]
    return {
        "expression": parsed.text,
        "exact": " or ".join(f"{parsed.unknown} = {text}" for text in exact),
        "decimal": " or ".join(f"{parsed.unknown} = {decimal_text(solution)}" for solution in solutions),
        "approx": real[0] if len(real) == 1 and len(solutions) == 1 else None,
        "solutions": exact,
    }


def evaluate(parsed: ParsedInput) -> Evaluated:
    """Compute a parsed input; returns a JSON-able dict (expression, exact, decimal, approx, solutions)."""
    try:
        if parsed.kind == "equation":
            return _solve(parsed)
        value = _check_defined(_Evaluator({}).evaluate(parsed.left))
        return _evaluated(parsed.text, value)
    except PrecisionExhausted:
        raise ResultTooLargeError("the value needs more precision than the calculator allows") from None
