"""The run-time half of :mod:`ivr.flow.expr`: operators and the allowed functions.

Every function checks its operands and raises :class:`Fail` with a message that names types,
never values (a value may be a secret); the expression node turns it into an ``ExprError`` with
its column. Rules, chosen for flows written by ops staff:

* ``null`` is what unknown variables are: ordering with ``null`` is false, ``x in null`` is false,
  ``len(null)`` is 0, and the text functions read ``null`` as ``''``.
* Text and numbers never mix silently: ``'12' < 3`` and ``'1' == 1`` are errors that say to use
  ``int()``/``float()``/``str()``, because a digit string from a ``collect`` node compared to a
  number is nearly always a flow bug that would otherwise route callers wrongly without a trace.
* Booleans are not numbers for arithmetic and ordering.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ivr.flow.regex import RegexError, compile_regex

MAX_TEXT = 100_000  # longest text an operator may build ('x' * 10**9 must not eat the memory)


class Fail(Exception):
    """A run-time failure; carries a message for ExprError."""


def type_name(value: Any) -> str:
    """The flow-language name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "record"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_result(value: str) -> str:
    if len(value) > MAX_TEXT:
        raise Fail(f"text longer than {MAX_TEXT} characters")
    return value


# --- operators ---------------------------------------------------------------------------------


def op_add(a: Any, b: Any) -> Any:
    if is_number(a) and is_number(b):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return _text_result(a + b)
    raise Fail(f"cannot add {type_name(a)} and {type_name(b)}" + _hint(a, b))


def op_sub(a: Any, b: Any) -> Any:
    x, y = _numeric(a, b, "subtract")
    return x - y


def op_mul(a: Any, b: Any) -> Any:
    if is_number(a) and is_number(b):
        return a * b
    if isinstance(a, str) and isinstance(b, int) and not isinstance(b, bool):
        if len(a) * max(b, 0) > MAX_TEXT:
            raise Fail(f"text longer than {MAX_TEXT} characters")
        return a * b
    raise Fail(f"cannot multiply {type_name(a)} and {type_name(b)}" + _hint(a, b))


def op_div(a: Any, b: Any) -> Any:
    x, y = _numeric(a, b, "divide")
    if y == 0:
        raise Fail("division by zero")
    return x / y


def op_mod(a: Any, b: Any) -> Any:
    x, y = _numeric(a, b, "take the remainder of")
    if y == 0:
        raise Fail("division by zero")
    return x % y


def op_neg(a: Any) -> Any:
    if not is_number(a):
        raise Fail(f"cannot negate {type_name(a)}")
    return -a


def op_pos(a: Any) -> Any:
    if not is_number(a):
        raise Fail(f"unary + needs a number, got {type_name(a)}")
    return a


def _numeric(a: Any, b: Any, verb: str) -> tuple[Any, Any]:
    if is_number(a) and is_number(b):
        return a, b
    raise Fail(f"cannot {verb} {type_name(a)} and {type_name(b)}" + _hint(a, b))


def _hint(a: Any, b: Any) -> str:
    kinds = {type_name(a), type_name(b)}
    if kinds == {"text", "number"}:
        return "; convert with int(), float() or str()"
    if "null" in kinds:
        return " (is a variable unset?)"
    return ""


def cmp_eq(a: Any, b: Any) -> bool:
    if (isinstance(a, str) and is_number(b)) or (is_number(a) and isinstance(b, str)):
        raise Fail("cannot compare text with number; convert with int(), float() or str()")
    return bool(a == b)


def cmp_order(a: Any, b: Any, test: Callable[[Any, Any], bool], symbol: str) -> bool:
    if a is None or b is None:
        return False
    if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return bool(test(a, b))
    raise Fail(f"cannot compare {type_name(a)} with {type_name(b)} using {symbol}" + _hint(a, b))


def cmp_in(a: Any, b: Any) -> bool:
    if b is None:
        return False
    if isinstance(b, str):
        if a is None:
            return False
        if not isinstance(a, str):
            raise Fail(f"cannot look for {type_name(a)} in text" + _hint(a, b))
        return a in b
    if isinstance(b, (list, tuple, Mapping)):
        try:
            return a in b
        except TypeError:  # an unhashable key looked up in a record
            raise Fail(f"cannot look for {type_name(a)} in a record") from None
    raise Fail(f"'in' needs text, a list or a record on the right, got {type_name(b)}")


# --- functions ---------------------------------------------------------------------------------


def as_text(value: Any, where: str) -> str:
    """Text for the string functions: null reads as '', numbers as their digits."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if is_number(value):
        return str(value)
    raise Fail(f"{where} needs text, got {type_name(value)}")


def f_len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    raise Fail(f"len() needs text, a list or a record, got {type_name(value)}")


def f_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Fail("int() of a number that is not finite")
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        # "1024.50" from a recognizer or webhook: truncate like int(1024.5) does.
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise Fail("int() of text that is not a number") from None
        if not number.is_finite():
            raise Fail("int() of a number that is not finite")
        return int(number)
    raise Fail(f"int() needs text or a number, got {type_name(value)}")


def f_float(value: Any) -> float:
    if isinstance(value, (bool, int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise Fail("float() of text that is not a number") from None
    else:
        raise Fail(f"float() needs text or a number, got {type_name(value)}")
    if not math.isfinite(result):
        raise Fail("float() of a number that is not finite")
    return result


def f_str(value: Any) -> str:
    return "" if value is None else _text_result(str(value))


def f_lower(value: Any) -> str:
    return as_text(value, "lower()").lower()


def f_upper(value: Any) -> str:
    return as_text(value, "upper()").upper()


def f_strip(value: Any) -> str:
    return as_text(value, "strip()").strip()


def f_startswith(value: Any, prefix: Any) -> bool:
    return as_text(value, "startswith()").startswith(as_text(prefix, "startswith()"))


def f_endswith(value: Any, suffix: Any) -> bool:
    return as_text(value, "endswith()").endswith(as_text(suffix, "endswith()"))


def f_contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return as_text(needle, "contains()") in haystack
    return cmp_in(needle, haystack)


def regex(pattern: str) -> Any:
    """The compiled pattern (RE2: linear time); Fail if RE2 refuses it."""
    try:
        return compile_regex(pattern)
    except RegexError as exc:
        raise Fail(f"invalid regular expression: {exc}") from None


def f_matches(value: Any, pattern: Any) -> bool:
    if not isinstance(pattern, str):
        raise Fail(f"matches() needs a text pattern, got {type_name(pattern)}")
    # search semantics, like a collect node's pattern: anchor with ^ and $ for a full match.
    return regex(pattern).search(as_text(value, "matches()")) is not None


def f_round(value: Any, places: Any = None) -> int | float:
    if not is_number(value):
        raise Fail(f"round() needs a number, got {type_name(value)}")
    digits = 0 if places is None else places
    if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 10:
        raise Fail("round() places must be a whole number from 0 to 10")
    if isinstance(value, float) and not math.isfinite(value):
        raise Fail("round() of a number that is not finite")
    # Half up, as people round money; Python's round() would round 2.5 to 2.
    rounded = Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return int(rounded) if places is None else float(rounded)


def f_abs(value: Any) -> Any:
    if not is_number(value):
        raise Fail(f"abs() needs a number, got {type_name(value)}")
    return abs(value)


def _extreme(name: str, pick: Callable[[list[Any]], Any], args: tuple[Any, ...]) -> Any:
    items = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
    if not items:
        raise Fail(f"{name}() of an empty list")
    if all(is_number(x) for x in items) or all(isinstance(x, str) for x in items):
        return pick(items)
    kinds = ", ".join(sorted({type_name(x) for x in items}))
    raise Fail(f"{name}() needs all numbers or all text, got {kinds}")


def f_min(*args: Any) -> Any:
    return _extreme("min", min, args)


def f_max(*args: Any) -> Any:
    return _extreme("max", max, args)
