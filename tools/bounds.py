"""A conservative upper bound on how big a calculation can get, computed from the tree alone.

Inputs whose bound is small are evaluated in-process (fast path); everything else, including anything whose
size cannot be bounded, goes to the worker process that has a time limit and a memory cap.
"""

from __future__ import annotations

import math

from tools.parsing import BinaryOp, Call, Name, Negate, Node, Number, ParsedInput

FAST_PATH_BITS = 4096
FAST_PATH_NODES = 120
_TRANSCENDENTAL = frozenset({"exp", "log", "ln", "log10", "log2", "sin", "cos", "tan", "asin", "acos", "atan"})


def _number_bits(number: Number) -> float:
    value = number.value
    return float(abs(value.numerator).bit_length() + value.denominator.bit_length())


def _literal_magnitude(node: Node) -> float | None:
    """|value| when the node is a (possibly negated) number literal."""
    if isinstance(node, Number):
        return float(node.value)
    if isinstance(node, Negate):
        inner = _literal_magnitude(node.operand)
        return None if inner is None else abs(inner)
    return None


def size_bound(node: Node) -> float:
    """Upper bound, in bits, of any exact number computed for ``node`` (``math.inf`` when unknown)."""
    if isinstance(node, Number):
        return _number_bits(node)
    if isinstance(node, Name):
        return 2.0
    if isinstance(node, Negate):
        return size_bound(node.operand)
    if isinstance(node, BinaryOp):
        left, right = size_bound(node.left), size_bound(node.right)
        if node.op != "**":
            return left + right + 1
        exponent = _literal_magnitude(node.right)
        if exponent is None:
            exponent = math.pow(2.0, right) if right < 16 else math.inf
        return max(left, 1.0) * (exponent + 1)
    return _call_bound(node)


def _call_bound(node: Call) -> float:
    sizes = [size_bound(argument) for argument in node.args]
    if node.function in _TRANSCENDENTAL:
        # exp(x) has about 1.45*|x| bits; other functions stay small, but only for moderate arguments.
        if sizes[0] > 64:
            return math.inf
        return 1.45 * math.pow(2.0, sizes[0]) if node.function == "exp" else 64.0
    if node.function in ("factorial", "binomial"):
        if sizes[0] > 16:
            return math.inf
        largest = math.pow(2.0, sizes[0])
        return largest * max(math.log2(largest), 1.0)
    return sum(sizes) + 1


def is_small(parsed: ParsedInput) -> bool:
    """True when the input is proven cheap enough to evaluate in-process without a time limit."""
    if parsed.kind != "value":
        return False
    if _count(parsed.left) > FAST_PATH_NODES:
        return False
    return size_bound(parsed.left) <= FAST_PATH_BITS


def _count(node: Node) -> int:
    if isinstance(node, Number | Name):
        return 1
    if isinstance(node, Negate):
        return 1 + _count(node.operand)
    if isinstance(node, BinaryOp):
        return 1 + _count(node.left) + _count(node.right)
    return 1 + sum(_count(argument) for argument in node.args)
