"""Safe expressions for conditions and computed variables (allow-list, never ``eval``).

API:
    compile_expr(text: str) -> Expression      # raises ExprError with a column offset
    Expression.source: str
    Expression.names: frozenset[str]           # dotted variable names it reads
    Expression.evaluate(scope: Mapping[str, Any]) -> Any
    lookup(scope, dotted_name) -> Any          # nested dict lookup; unknown -> None

The text is parsed by :mod:`ast` (``mode="eval"``) and every node is checked against an
allow-list, then turned into a tree of small closures. Nothing is ever handed to ``eval`` or
``exec``, no Python attribute is ever read, and only the functions in :data:`FUNCTIONS` and the
string methods in :data:`METHODS` can be called. Runtime failures ("text" < 1, ``int('x')``,
division by zero) raise :class:`ExprError` too, never a bare Python exception. Error messages
name types, never values: a value may be a PIN.
"""

from __future__ import annotations

import ast
import functools
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ivr.flow import _exprfuncs as fn
from ivr.flow._exprfuncs import Fail, type_name

Evaluator = Callable[[Mapping[str, Any]], Any]

MAX_LENGTH = 2000  # longer texts are refused: they are a mistake, and deep trees cost stack
LITERAL_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    # name: (implementation, min args, max args or None for any)
    "len": (fn.f_len, 1, 1),
    "int": (fn.f_int, 1, 1),
    "float": (fn.f_float, 1, 1),
    "str": (fn.f_str, 1, 1),
    "lower": (fn.f_lower, 1, 1),
    "upper": (fn.f_upper, 1, 1),
    "startswith": (fn.f_startswith, 2, 2),
    "endswith": (fn.f_endswith, 2, 2),
    "contains": (fn.f_contains, 2, 2),
    "matches": (fn.f_matches, 2, 2),
    "round": (fn.f_round, 1, 2),
    "abs": (fn.f_abs, 1, 1),
    "min": (fn.f_min, 1, None),
    "max": (fn.f_max, 1, None),
}
METHODS: dict[str, tuple[Callable[..., Any], int]] = {
    # x.name(...): (implementation taking x first, number of further args)
    "startswith": (fn.f_startswith, 1),
    "endswith": (fn.f_endswith, 1),
    "lower": (fn.f_lower, 0),
    "upper": (fn.f_upper, 0),
    "strip": (fn.f_strip, 0),
}
_BINOPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", fn.op_add),
    ast.Sub: ("-", fn.op_sub),
    ast.Mult: ("*", fn.op_mul),
    ast.Div: ("/", fn.op_div),
    ast.Mod: ("%", fn.op_mod),
}
_REFUSED_BINOPS = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.MatMult: "@",
}
_ORDER_OPS: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Subscript: "indexing is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.Starred: "* unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


class ExprError(ValueError):
    """An expression was refused (compile time) or failed (run time).

    Attributes:
        message: what is wrong, without any variable's value.
        col: 0-based character offset in the expression text.
    """

    def __init__(self, message: str, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.col = col


@dataclass(frozen=True, eq=False)
class Expression:
    """A checked expression, ready to evaluate against any number of scopes."""

    source: str
    names: frozenset[str]
    _run: Evaluator = field(repr=False)

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """The expression's value in ``scope`` (variables; dotted names reach into dicts).

        Raises:
            ExprError: the expression failed for these values (types that do not fit, a bad
                conversion, division by zero).
        """
        try:
            return self._run(scope)
        except ExprError:
            raise
        except RecursionError:
            raise ExprError("expression is nested too deeply", 0) from None
        except (TypeError, ValueError, ArithmeticError, MemoryError) as exc:
            # A safety net: every operator checks its operands, so this is not expected.
            raise ExprError(f"evaluation failed ({type(exc).__name__})", 0) from None


def lookup(scope: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` (``balance.available``) in nested mappings; None if absent."""
    value: Any = scope
    for part in dotted.split("."):
        # dict first: the ABC check costs several times more and nearly every scope is a dict
        if not (isinstance(value, dict) or isinstance(value, Mapping)):  # noqa: SIM101
            return None
        value = value.get(part)
    return value


@functools.lru_cache(maxsize=4096)
def compile_expr(text: str) -> Expression:
    """Parse and check ``text``; the result is cached, so compiling per evaluation is cheap.

    Raises:
        ExprError: syntax errors and every construct outside the allow-list, with the column.
    """
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    # YAML folded strings may carry newlines; the grammar is one line, so treat them as spaces.
    flat = text.replace("\r", " ").replace("\n", " ")
    body = flat.lstrip()
    lead = len(flat) - len(body)
    if not body.strip():
        raise ExprError("empty expression", 0)
    try:
        with warnings.catch_warnings():
            # '^\d+$' in a matches() pattern is an "invalid escape" to Python, which keeps the
            # backslash: exactly what a flow author means, so the warning is noise here.
            warnings.simplefilter("ignore")
            tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        offset = exc.offset if exc.offset and exc.offset > 0 else len(body) + 1
        col = min(offset - 1, len(body))
        raise ExprError(f"syntax error: {exc.msg}", lead + col) from None
    except (ValueError, MemoryError, RecursionError) as exc:  # e.g. NUL bytes, absurd nesting
        raise ExprError(f"cannot parse expression ({type(exc).__name__})", lead) from None
    compiler = _Compiler(body, lead)
    try:
        run = compiler.compile(tree.body)
    except RecursionError:
        raise ExprError("expression is nested too deeply", lead) from None
    return Expression(source=text, names=frozenset(compiler.names), _run=run)


def _guard(run: Callable[[Mapping[str, Any]], Any], col: int) -> Evaluator:
    """Turn a :class:`Fail` raised by an operator into an ExprError at ``col``."""

    def guarded(scope: Mapping[str, Any]) -> Any:
        try:
            return run(scope)
        except Fail as exc:
            raise ExprError(str(exc), col) from None

    return guarded


class _Compiler:
    """Walks the AST once, refusing what is not allowed and building closures for the rest."""

    def __init__(self, body: str, lead: int) -> None:
        self.body = body
        self.raw = body.encode("utf-8")
        self.lead = lead
        self.names: set[str] = set()

    # --- positions ---------------------------------------------------------------------------

    def col_of(self, byte_offset: int) -> int:
        """ast offsets count UTF-8 bytes; callers want characters of the original text."""
        return self.lead + len(self.raw[:byte_offset].decode("utf-8", errors="ignore"))

    def col(self, node: ast.AST) -> int:
        return self.col_of(getattr(node, "col_offset", 0))

    def between(self, left: ast.AST, right: ast.AST, symbol: str) -> int:
        """Column of ``symbol`` written between two operands (ast does not record operators)."""
        start = getattr(left, "end_col_offset", None) or 0
        end = getattr(right, "col_offset", len(self.raw))
        found = self.raw.find(symbol.encode(), start, end)
        return self.col_of(found if found >= 0 else start)

    def fail(self, message: str, node: ast.AST, col: int | None = None) -> ExprError:
        return ExprError(message, self.col(node) if col is None else col)

    # --- dispatch ----------------------------------------------------------------------------

    def compile(self, node: ast.AST) -> Evaluator:
        handler = getattr(self, f"c_{type(node).__name__}", None)
        if handler is not None:
            result: Evaluator = handler(node)
            return result
        for kind, message in _REFUSED_NODES.items():
            if isinstance(node, kind):
                if isinstance(node, ast.Subscript):
                    raise self.fail(message, node, self.col_of(node.value.end_col_offset or 0))
                raise self.fail(message, node)
        raise self.fail(f"{type(node).__name__} is not allowed", node)

    def c_Constant(self, node: ast.Constant) -> Evaluator:
        value = node.value
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise self.fail(f"{type(value).__name__} literals are not allowed", node)
        return lambda scope: value

    def c_Name(self, node: ast.Name) -> Evaluator:
        if node.id in LITERAL_NAMES:
            value = LITERAL_NAMES[node.id]
            return lambda scope: value
        return self.dotted(node)

    def c_Attribute(self, node: ast.Attribute) -> Evaluator:
        return self.dotted(node)

    def dotted(self, node: ast.expr) -> Evaluator:
        parts: list[str] = []
        cur = node
        while isinstance(cur, ast.Attribute):
            self.check_name(cur.attr, self.col_of((cur.end_col_offset or 0) - len(cur.attr)))
            parts.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name) or cur.id in LITERAL_NAMES:
            where = node.end_col_offset or 0
            col = self.col_of(where - len(parts[-1])) if parts else self.col(node)
            raise ExprError("attribute access is only allowed on variable names", col)
        self.check_name(cur.id, self.col(cur))
        parts.append(cur.id)
        parts.reverse()
        name = ".".join(parts)
        self.names.add(name)
        first, rest = parts[0], tuple(parts[1:])

        def read(scope: Mapping[str, Any]) -> Any:
            value = scope.get(first)
            for part in rest:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(part)
            return value

        return read

    def check_name(self, name: str, col: int) -> None:
        if name.startswith("__"):
            raise ExprError(f"names starting with '__' are not allowed: {name}", col)

    # --- operators ---------------------------------------------------------------------------

    def c_BoolOp(self, node: ast.BoolOp) -> Evaluator:
        parts = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def run_and(scope: Mapping[str, Any]) -> Any:
                value: Any = True
                for part in parts:
                    value = part(scope)
                    if not value:
                        return value
                return value

            return run_and

        def run_or(scope: Mapping[str, Any]) -> Any:
            value: Any = False
            for part in parts:
                value = part(scope)
                if value:
                    return value
            return value

        return run_or

    def c_UnaryOp(self, node: ast.UnaryOp) -> Evaluator:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda scope: not operand(scope)
        if isinstance(node.op, ast.USub):
            return _guard(lambda scope: fn.op_neg(operand(scope)), self.col(node))
        if isinstance(node.op, ast.UAdd):
            return _guard(lambda scope: fn.op_pos(operand(scope)), self.col(node))
        raise self.fail("operator ~ is not allowed", node)

    def c_BinOp(self, node: ast.BinOp) -> Evaluator:
        refused = _REFUSED_BINOPS.get(type(node.op))
        if refused:
            col = self.between(node.left, node.right, refused)
            raise ExprError(f"operator {refused} is not allowed", col)
        symbol, impl = _BINOPS[type(node.op)]
        left, right = self.compile(node.left), self.compile(node.right)
        col = self.between(node.left, node.right, symbol)
        return _guard(lambda scope: impl(left(scope), right(scope)), col)

    def c_Compare(self, node: ast.Compare) -> Evaluator:
        operands = [node.left, *node.comparators]
        steps: list[tuple[Callable[[Any, Any], bool], Evaluator, int]] = []
        for i, op in enumerate(node.ops):
            steps.append((self.comparison(op, operands[i], operands[i + 1]),
                          self.compile(operands[i + 1]),
                          self.between(operands[i], operands[i + 1], _op_symbol(op))))
        first = self.compile(node.left)

        def run(scope: Mapping[str, Any]) -> bool:
            left = first(scope)
            for test, right_eval, col in steps:
                right = right_eval(scope)
                try:
                    if not test(left, right):
                        return False
                except Fail as exc:
                    raise ExprError(str(exc), col) from None
                left = right
            return True

        return run

    def comparison(
        self, op: ast.cmpop, left: ast.AST, right: ast.AST
    ) -> Callable[[Any, Any], bool]:
        if isinstance(op, ast.Eq):
            return fn.cmp_eq
        if isinstance(op, ast.NotEq):
            return lambda a, b: not fn.cmp_eq(a, b)
        if isinstance(op, ast.In):
            return fn.cmp_in
        if isinstance(op, ast.NotIn):
            return lambda a, b: not fn.cmp_in(a, b)
        if type(op) in _ORDER_OPS:
            symbol, test = _ORDER_OPS[type(op)]
            return lambda a, b: fn.cmp_order(a, b, test, symbol)
        word = "is not" if isinstance(op, ast.IsNot) else "is"
        col = self.between(left, right, "is")
        raise ExprError(f"'{word}' is not allowed; use == or !=", col)

    def c_IfExp(self, node: ast.IfExp) -> Evaluator:
        test, yes, no = (self.compile(n) for n in (node.test, node.body, node.orelse))
        return lambda scope: yes(scope) if test(scope) else no(scope)

    def c_List(self, node: ast.List) -> Evaluator:
        return self.sequence(node.elts)

    def c_Tuple(self, node: ast.Tuple) -> Evaluator:
        return self.sequence(node.elts)

    def sequence(self, elts: Sequence[ast.expr]) -> Evaluator:
        items = [self.compile(e) for e in elts]
        return lambda scope: [item(scope) for item in items]

    # --- calls -------------------------------------------------------------------------------

    def c_Call(self, node: ast.Call) -> Evaluator:
        for kw in node.keywords:
            raise self.fail("keyword arguments are not allowed", kw)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail("* unpacking is not allowed", arg)
        func = node.func
        if isinstance(func, ast.Name):
            return self.function(node, func)
        if isinstance(func, ast.Attribute) and func.attr in METHODS:
            return self.method(node, func)
        if isinstance(func, ast.Attribute):
            col = self.col_of((func.end_col_offset or 0) - len(func.attr))
            allowed = ", ".join(sorted(METHODS))
            raise ExprError(f"method '{func.attr}' is not allowed (only {allowed})", col)
        raise self.fail("only the listed functions can be called", func)

    def function(self, node: ast.Call, func: ast.Name) -> Evaluator:
        self.check_name(func.id, self.col(func))
        if func.id not in FUNCTIONS:
            allowed = ", ".join(FUNCTIONS)
            raise self.fail(f"unknown function '{func.id}' (allowed: {allowed})", func)
        impl, low, high = FUNCTIONS[func.id]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            want = str(low) if low == high else f"{low} or more" if high is None else (
                f"{low} to {high}")
            raise self.fail(f"{func.id}() takes {want} argument(s), got {count}", node)
        if func.id == "matches" and isinstance(node.args[1], ast.Constant):
            self.check_regex(node.args[1])
        args = [self.compile(a) for a in node.args]
        return _guard(lambda scope: impl(*[a(scope) for a in args]), self.col(node))

    def method(self, node: ast.Call, func: ast.Attribute) -> Evaluator:
        impl, count = METHODS[func.attr]
        col = self.col_of((func.end_col_offset or 0) - len(func.attr))
        if len(node.args) != count:
            raise ExprError(
                f".{func.attr}() takes {count} argument(s), got {len(node.args)}", col
            )
        target = self.compile(func.value)
        args = [self.compile(a) for a in node.args]
        return _guard(lambda scope: impl(target(scope), *[a(scope) for a in args]), col)

    def check_regex(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str):
            raise self.fail("matches() needs a text pattern", node)
        try:
            fn.regex(node.value)
        except Fail as exc:
            raise self.fail(str(exc), node) from None


def _op_symbol(op: ast.cmpop) -> str:
    symbols = {ast.Eq: "==", ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not"}
    if type(op) in _ORDER_OPS:
        return _ORDER_OPS[type(op)][0]
    return symbols.get(type(op), "")


__all__ = [
    "FUNCTIONS",
    "METHODS",
    "ExprError",
    "Expression",
    "compile_expr",
    "lookup",
    "type_name",
]
