"""Calculator input -> a validated expression tree, without ever evaluating text.

The input is tokenised by a regular expression (unknown characters are refused with a message), rewritten at
the token level (thousands separators, ``^``, postfix ``%`` and ``!``, implicit multiplication), parsed by
Python's ``ast`` in eval mode, and converted node by node into this module's own small tree. Only whitelisted
node types and function names survive the conversion; everything else raises a :class:`CalculatorError`
subclass. The tree, not text, is what the evaluator turns into SymPy objects.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from tools.errors import CalcParseError, ResultTooLargeError, UnsupportedConstructError

MAX_INPUT_CHARS = 1000
MAX_NODES = 400
MAX_DEPTH = 60
MAX_LITERAL_EXPONENT = 30_000

BinaryOperator = Literal["+", "-", "*", "/", "//", "%", "**"]

FUNCTION_ARITY: dict[str, tuple[int, int]] = {
    "sqrt": (1, 1), "cbrt": (1, 1), "root": (2, 2), "exp": (1, 1),
    "log": (1, 2), "ln": (1, 1), "log10": (1, 1), "log2": (1, 1),
    "sin": (1, 1), "cos": (1, 1), "tan": (1, 1), "asin": (1, 1), "acos": (1, 1), "atan": (1, 1),
    "abs": (1, 1), "floor": (1, 1), "ceil": (1, 1), "round": (1, 2),
    "factorial": (1, 1), "binomial": (2, 2), "gcd": (2, 16), "lcm": (2, 16), "min": (1, 16), "max": (1, 16),
    "percent": (1, 1),
}
FUNCTION_ALIASES = {
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "ceiling": "ceil", "choose": "binomial",
    "comb": "binomial", "ncr": "binomial", "fact": "factorial", "absolute": "abs",
}
CONSTANTS = frozenset({"pi", "e"})
# Unicode operator characters the parser reads, and their ASCII spelling.
UNICODE_OPERATORS = {"×": "*", "·": "*", "∙": "*", "÷": "/", "−": "-", "–": "-", "π": "pi", "√": " sqrt ",
                     "²": "^2", "³": "^3"}
_REFUSED_CHARACTERS = {
    "'": "strings are not allowed", '"': "strings are not allowed",
    ".": "attribute access ('.') is not allowed", "[": "indexing ('[') is not allowed",
    "]": "indexing (']') is not allowed", ":": "lambdas and slices (':') are not allowed",
    "{": "sets and dicts ('{') are not allowed", "}": "sets and dicts ('}') are not allowed",
    ";": "statements (';') are not allowed", "@": "'@' is not an operator here",
    "&": "bitwise operators are not allowed",
    "|": "bitwise operators are not allowed", "~": "bitwise operators are not allowed",
    "<": "comparisons are not supported", ">": "comparisons are not supported", "\\": "backslashes are not allowed",
    "#": "comments are not allowed", "$": "'$' is not allowed", "`": "backticks are not allowed",
}
_TOKEN = re.compile(
    r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|//|[-+*/%^(),=!])"
    r"|(?P<space>\s+)"
)


@dataclass(frozen=True)
class Number:
    """An exact number literal: ``text`` as written (normalised), ``value`` as a fraction."""

    value: Fraction
    text: str


@dataclass(frozen=True)
class Name:
    """A constant (``pi``, ``e``) or, in an equation, the unknown."""

    name: str


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class BinaryOp:
    """``left op right`` for one of + - * / // % **."""

    op: BinaryOperator
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A call of a whitelisted function by its canonical name."""

    function: str
    args: tuple[Node, ...]


Node = Number | Name | Negate | BinaryOp | Call


@dataclass(frozen=True)
class ParsedInput:
    """A validated calculator input: a value to compute, or an equation ``left = right`` in ``unknown``."""

    kind: Literal["value", "equation"]
    left: Node
    right: Node | None = None
    unknown: str | None = None

    @property
    def text(self) -> str:
        """The normalised input, which parses back to the same tree."""
        if self.kind == "equation":
            assert self.right is not None
            return f"solve {unparse(self.left)} = {unparse(self.right)}"
        return unparse(self.left)


# ---- tokens --------------------------------------------------------------------------------------

@dataclass
class _Token:
    kind: Literal["number", "name", "op"]
    text: str
    start: int
    end: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            character = text[position]
            reason = _REFUSED_CHARACTERS.get(character)
            if reason is not None:
                raise UnsupportedConstructError(f"{reason} (at position {position + 1})")
            raise CalcParseError(f"unexpected character {character!r} at position {position + 1}")
        kind = match.lastgroup
        if kind != "space":
            token_text = match.group()
            if kind == "name":
                token_text = token_text.lower()
            tokens.append(_Token(kind, token_text, match.start(), match.end()))  # type: ignore[arg-type]
        position = match.end()
    return tokens


def _is_function(token: _Token) -> bool:
    return token.kind == "name" and (token.text in FUNCTION_ARITY or token.text in FUNCTION_ALIASES)


def _ends_operand(token: _Token) -> bool:
    return token.kind == "number" or token.text == ")" or (token.kind == "name" and not _is_function(token))


def _starts_operand(token: _Token) -> bool:
    return token.kind in ("number", "name") or token.text == "("


def _merge_thousands(tokens: list[_Token]) -> list[_Token]:
    """``1,234,567.5`` -> one number, unless the comma separates arguments of a call like ``max(1,234)``."""
    merged: list[_Token] = []
    paren_is_call: list[bool] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.text == "(":
            paren_is_call.append(bool(merged) and _is_function(merged[-1]))
        elif token.text == ")" and paren_is_call:
            paren_is_call.pop()
        in_call = bool(paren_is_call) and paren_is_call[-1]
        if (
            token.kind == "number" and not in_call and re.fullmatch(r"\d{1,3}", token.text)
            and index + 2 < len(tokens) and tokens[index + 1].text == ","
            and tokens[index + 1].start == token.end and tokens[index + 2].start == tokens[index + 1].end
            and re.fullmatch(r"\d{3}(\.\d*)?", tokens[index + 2].text)
        ):
            digits = token.text
            end = token.end
            while (
                index + 2 < len(tokens) and tokens[index + 1].text == "," and tokens[index + 1].start == end
                and tokens[index + 2].start == tokens[index + 1].end
                and re.fullmatch(r"\d{3}(\.\d*)?", tokens[index + 2].text)
            ):
                digits += tokens[index + 2].text
                end = tokens[index + 2].end
                index += 2
                if "." in digits:
                    break
            merged.append(_Token("number", digits, token.start, end))
        else:
            merged.append(token)
        index += 1
    return merged


def _operand_start(tokens: list[_Token]) -> int:
    """Index where the operand ending at ``tokens[-1]`` begins (a number, a name, or a bracketed group/call)."""
    if tokens[-1].text != ")":
        return len(tokens) - 1
    depth = 0
    for index in range(len(tokens) - 1, -1, -1):
        if tokens[index].text == ")":
            depth += 1
        elif tokens[index].text == "(":
            depth -= 1
            if depth == 0:
                return index - 1 if index > 0 and _is_function(tokens[index - 1]) else index
    raise CalcParseError("unbalanced parentheses: a ')' has no matching '('")


def _wrap_previous_operand(tokens: list[_Token], function: str, symbol: str) -> None:
    if not tokens or not _ends_operand(tokens[-1]):
        raise CalcParseError(f"'{symbol}' must follow a number or a bracketed expression")
    start = _operand_start(tokens)
    operand = tokens[start:]
    del tokens[start:]
    tokens.append(_Token("name", function, operand[0].start, operand[0].start))
    tokens.append(_Token("op", "(", operand[0].start, operand[0].start))
    tokens.extend(operand)
    tokens.append(_Token("op", ")", operand[-1].end, operand[-1].end))


def _is_percent_sign(tokens: list[_Token], index: int) -> bool:
    """A ``%`` is a percentage when nothing that could be a divisor follows it; otherwise it is modulo."""
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    if following is None:
        return True
    after = tokens[index + 2] if index + 2 < len(tokens) else None
    spaced_before_sign = following.start > tokens[index].end
    if following.text in ("+", "-") and after is not None and spaced_before_sign and after.start == following.end:
        return False  # "7 % -3": a sign glued to the next number (after a space) is its sign, so this is modulo
    return following.text in (")", ",", "+", "-", "*", "/", "**", "^", "=", "of", "%", "//")


def _rewrite(tokens: list[_Token]) -> list[_Token]:
    """Postfix % and !, ``of``, ``^``, a function applied to a bare number, implicit multiplication."""
    output: list[_Token] = []
    for index, token in enumerate(tokens):
        if token.text == "%" and _is_percent_sign(tokens, index):
            _wrap_previous_operand(output, "percent", "%")
            continue
        if token.text == "!":
            _wrap_previous_operand(output, "factorial", "!")
            continue
        if token.text == "of":
            if not output or output[-1].text != ")" or not any(t.text == "percent" for t in output):
                raise UnsupportedConstructError("'of' is only understood after a percentage, as in '15% of 240'")
            output.append(_Token("op", "*", token.start, token.end))
            continue
        if token.text == "^":
            token = _Token("op", "**", token.start, token.end)
        if output:
            previous = output[-1]
            if _ends_operand(previous) and _starts_operand(token):
                if previous.kind == "number" and token.kind == "number":
                    raise CalcParseError(f"two numbers in a row: {previous.text!r} then {token.text!r}")
                output.append(_Token("op", "*", token.start, token.start))
        output.append(token)
        if _is_function(token) and index + 1 < len(tokens) and tokens[index + 1].kind == "number":
            output.append(_Token("op", "(", token.end, token.end))
            output.append(tokens[index + 1])
            output.append(_Token("op", ")", token.end, token.end))
            tokens[index + 1] = _Token("op", "", 0, 0)
    return [token for token in output if token.text]


# ---- tree ----------------------------------------------------------------------------------------

_BINARY: dict[type[ast.operator], BinaryOperator] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access is not allowed", ast.Subscript: "indexing is not allowed",
    ast.Lambda: "lambdas are not allowed", ast.Compare: "comparisons are not supported",
    ast.BoolOp: "'and'/'or' are not supported", ast.IfExp: "conditional expressions are not allowed",
    ast.Tuple: "tuples are not allowed", ast.List: "lists are not allowed", ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed", ast.ListComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generators are not allowed", ast.Starred: "'*' unpacking is not allowed",
    ast.NamedExpr: "assignment is not allowed", ast.JoinedStr: "strings are not allowed",
    ast.Await: "'await' is not allowed", ast.Yield: "'yield' is not allowed",
}


def _literal(text: str) -> Number:
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_LITERAL_EXPONENT:
        raise ResultTooLargeError(f"the number {text} is too large (exponent limit {MAX_LITERAL_EXPONENT})")
    value = Fraction(mantissa) * Fraction(10) ** int(exponent or "0")
    return Number(value, text)


def _check_shape(tree: ast.AST) -> None:
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise UnsupportedConstructError(f"the expression is too long (more than {MAX_NODES} parts)")
        if depth > MAX_DEPTH:
            raise UnsupportedConstructError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Converter:
    def __init__(self, source: str, unknowns: frozenset[str]) -> None:
        self.source = source
        self.unknowns = unknowns

    def convert(self, node: ast.AST) -> Node:
        if isinstance(node, ast.Expression):
            return self.convert(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                kind = "strings" if isinstance(node.value, str | bytes) else f"{type(node.value).__name__} values"
                raise UnsupportedConstructError(f"{kind} are not allowed; only numbers")
            segment = ast.get_source_segment(self.source, node)
            assert segment is not None
            return _literal(segment)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS or node.id in self.unknowns:
                return Name(node.id)
            raise _unknown_name(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return Negate(_settle(self.convert(node.operand)))
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand)
            raise UnsupportedConstructError(f"the unary operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise UnsupportedConstructError(f"the operator {type(node.op).__name__} is not allowed")
            left, right = self.convert(node.left), self.convert(node.right)
            if op in ("+", "-") and isinstance(right, Call) and right.function == "percent":
                # "240 + 15%" means 240 * (1 + 15/100).
                change = BinaryOp(op, Number(Fraction(1), "1"), _settle(right))
                return BinaryOp("*", _settle(left), change)
            return BinaryOp(op, _settle(left), _settle(right))
        if isinstance(node, ast.Call):
            return self._call(node)
        reason = _REFUSED_NODES.get(type(node), f"{type(node).__name__} is not allowed in an expression")
        raise UnsupportedConstructError(reason)

    def _call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            raise UnsupportedConstructError("only named functions can be called, like sqrt(2)")
        if node.keywords:
            raise UnsupportedConstructError("keyword arguments are not supported")
        name = FUNCTION_ALIASES.get(node.func.id, node.func.id)
        if name not in FUNCTION_ARITY:
            raise _unknown_name(node.func.id)
        low, high = FUNCTION_ARITY[name]
        if not low <= len(node.args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise CalcParseError(f"{name}() takes {expected} argument(s), {len(node.args)} given")
        return Call(name, tuple(_settle(self.convert(argument)) for argument in node.args))


def _settle(node: Node) -> Node:
    """A percentage that is not the right operand of + or - is just x/100."""
    if isinstance(node, Call) and node.function == "percent":
        return BinaryOp("/", node.args[0], Number(Fraction(100), "100"))
    return node


def _unknown_name(name: str) -> UnsupportedConstructError:
    if keyword.iskeyword(name) or name in ("import", "__import__", "eval", "exec", "open"):
        return UnsupportedConstructError(f"{name!r} is not allowed; only numbers, operators and math functions")
    known = sorted(set(FUNCTION_ARITY) - {"percent"} | CONSTANTS | set(FUNCTION_ALIASES))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UnsupportedConstructError(f"unknown name {name!r}{hint}")


def _parse_tokens(tokens: list[_Token], unknowns: frozenset[str]) -> Node:
    if not tokens:
        raise CalcParseError("the expression is empty")
    source = " ".join(token.text for token in tokens)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise CalcParseError(f"not a well-formed expression: {error.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise UnsupportedConstructError("the expression is nested too deeply") from None
    _check_shape(tree)
    return _settle(_Converter(source, unknowns).convert(tree))


def parse(text: str) -> ParsedInput:
    """Validate calculator input and return its tree; raises a CalculatorError subclass on anything else."""
    if len(text) > MAX_INPUT_CHARS:
        raise UnsupportedConstructError(
            f"the input is too long ({len(text)} characters; the limit is {MAX_INPUT_CHARS})"
        )
    for character, replacement in UNICODE_OPERATORS.items():
        text = text.replace(character, replacement)
    command = re.match(r"\s*solve\b\s*:?", text, re.IGNORECASE)
    solve = command is not None
    if command is not None:
        text = text[command.end() :]
    tokens = _tokenize(text.strip())
    equals = [index for index, token in enumerate(tokens) if token.text == "="]
    if not equals:
        if solve:
            raise CalcParseError("'solve' needs an equation with '=', as in 'solve 2x + 3 = 7'")
        return ParsedInput("value", _parse_tokens(_rewrite(_merge_thousands(tokens)), frozenset()))
    if len(equals) > 1:
        raise CalcParseError("an equation has exactly one '='")
    left_tokens, right_tokens = tokens[: equals[0]], tokens[equals[0] + 1 :]
    names = {
        token.text for token in left_tokens + right_tokens
        if token.kind == "name" and not _is_function(token) and token.text not in CONSTANTS and token.text != "of"
    }
    if len(names) != 1:
        found = ", ".join(sorted(names)) or "none"
        raise UnsupportedConstructError(f"an equation must have exactly one unknown (found: {found})")
    unknown = names.pop()
    if keyword.iskeyword(unknown) or unknown.startswith("_"):
        raise _unknown_name(unknown)
    left = _parse_tokens(_rewrite(_merge_thousands(left_tokens)), frozenset({unknown}))
    right = _parse_tokens(_rewrite(_merge_thousands(right_tokens)), frozenset({unknown}))
    return ParsedInput("equation", left, right, unknown)


# ---- normalised text -----------------------------------------------------------------------------

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "neg": 3, "**": 4}


def unparse(node: Node) -> str:
    """The node as calculator text with only the brackets precedence needs."""
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Call):
        return f"{node.function}({', '.join(unparse(argument) for argument in node.args)})"
    if isinstance(node, Negate):
        inner = unparse(node.operand)
        return f"-{inner}" if _precedence(node.operand) >= _PRECEDENCE["neg"] else f"-({inner})"
    mine = _PRECEDENCE[node.op]
    left, right = unparse(node.left), unparse(node.right)
    left_precedence, right_precedence = _precedence(node.left), _precedence(node.right)
    if node.op == "**":
        # ** is right-associative and binds tighter than unary minus on its left: (-2)**2.
        left_needs = left_precedence <= mine
        right_needs = right_precedence < mine and not isinstance(node.right, Negate)
    else:
        left_needs = left_precedence < mine
        right_needs = right_precedence <= mine
    left = f"({left})" if left_needs else left
    right = f"({right})" if right_needs else right
    return f"{left} {node.op} {right}"


def _precedence(node: Node) -> int:
    if isinstance(node, BinaryOp):
        return _PRECEDENCE[node.op]
    if isinstance(node, Negate):
        return _PRECEDENCE["neg"]
    if isinstance(node, Number) and node.value < 0:
        return _PRECEDENCE["neg"]
    return 10
