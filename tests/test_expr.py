"""The safe expression language: what it computes, what it refuses, and where it points."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.flow.expr import ExprError, compile_expr, lookup

SCOPE: dict[str, Any] = {
    "segment": "corporate",
    "attempts": 2,
    "ratio": 0.5,
    "account": "62220212",
    "amount": "1024.50",
    "flag": True,
    "empty": "",
    "tags": ["vip", "new"],
    "call": {"caller": "+8695588123", "called": "95588"},
    "balance": {"available": 1024.5, "currency": "CNY", "limits": {"daily": 5000}},
    "name": "  Li Wei ",
}


def ev(text: str, scope: dict[str, Any] | None = None) -> Any:
    return compile_expr(text).evaluate(SCOPE if scope is None else scope)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # literals
        ("1", 1),
        ("2.5", 2.5),
        ("'text'", "text"),
        ('"text"', "text"),
        ("'中文'", "中文"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("True", True),
        ("False", False),
        ("None", None),
        ("[1, 'a']", [1, "a"]),
        # names
        ("segment", "corporate"),
        ("call.caller", "+8695588123"),
        ("balance.limits.daily", 5000),
        ("unknown", None),
        ("call.unknown", None),
        ("segment.deeper", None),
        ("balance.limits.daily.more", None),
        # comparisons
        ("segment == 'corporate'", True),
        ("segment != 'corporate'", False),
        ("attempts < 3", True),
        ("attempts <= 2", True),
        ("attempts > 2", False),
        ("attempts >= 2", True),
        ("1 < attempts < 3", True),
        ("1 < attempts < 2", False),
        ("'a' < 'b'", True),
        ("segment in ['corporate', 'vip']", True),
        ("'vip' in tags", True),
        ("'old' not in tags", True),
        ("'Wei' in name", True),
        ("'currency' in balance", True),
        ("'x' in unknown", False),
        ("'x' not in unknown", True),
        ("null in 'abc'", False),
        ("unknown == null", True),
        ("unknown != null", False),
        ("unknown < 3", False),
        ("unknown >= 3", False),
        ("3 > unknown", False),
        ("1 == 1.0", True),
        # boolean logic keeps Python's values
        ("flag and attempts", 2),
        ("empty or 'default'", "default"),
        ("not empty", True),
        ("not flag or attempts > 1", True),
        ("attempts > 1 and segment == 'corporate'", True),
        # arithmetic
        ("attempts + 1", 3),
        ("attempts - 3", -1),
        ("attempts * 2.5", 5.0),
        ("7 / 2", 3.5),
        ("7 % 3", 1),
        ("-attempts", -2),
        ("+attempts", 2),
        ("(attempts + 1) * 2", 6),
        ("attempts + 1 * 2", 4),
        ("'a' + 'b'", "ab"),
        ("'ab' * 2", "abab"),
        ("2 - -1", 3),
        # conditional
        ("8 if segment == 'corporate' else 5", 8),
        ("8 if segment == 'retail' else 5", 5),
        ("'a' if unknown else 'b'", "b"),
        # functions
        ("len(account)", 8),
        ("len(tags)", 2),
        ("len(unknown)", 0),
        ("int('42')", 42),
        ("int(' 42 ')", 42),
        ("int(amount)", 1024),
        ("int(3.9)", 3),
        ("int(-3.9)", -3),
        ("int(true)", 1),
        ("float(amount)", 1024.5),
        ("float(3)", 3.0),
        ("str(42)", "42"),
        ("str(unknown)", ""),
        ("str(2.5)", "2.5"),
        ("lower('AbC')", "abc"),
        ("upper(segment)", "CORPORATE"),
        ("lower(unknown)", ""),
        ("startswith(call.caller, '+86955')", True),
        ("endswith(account, '0212')", True),
        ("startswith(unknown, 'x')", False),
        ("contains(segment, 'corp')", True),
        ("contains(tags, 'vip')", True),
        ("contains(unknown, 'x')", False),
        ("matches(account, '^62')", True),
        ("matches(account, '^\\d{8}$')", True),
        ("matches(account, '^63')", False),
        ("matches(unknown, '^$')", True),
        ("round(2.5)", 3),
        ("round(3.5)", 4),
        ("round(-2.5)", -3),
        ("round(1.005, 2)", 1.01),
        ("round(balance.available, 0)", 1025.0),
        ("abs(-3)", 3),
        ("abs(2.5)", 2.5),
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2.5)", 3),
        ("max(tags)", "vip"),
        ("min('b', 'a')", "a"),
        # method forms
        ("call.caller.startswith('+86955')", True),
        ("call.caller.endswith('123')", True),
        ("segment.upper()", "CORPORATE"),
        ("'ABC'.lower()", "abc"),
        ("name.strip()", "Li Wei"),
        ("name.strip().lower().startswith('li')", True),
        ("(segment + '!').upper()", "CORPORATE!"),
        ("unknown.strip()", ""),
        ("account.startswith(6222)", True),  # numbers read as their digits
        # whitespace and newlines (YAML folded strings)
        ("  attempts\n  + 1", 3),
    ],
)
def test_evaluates(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        # 0         1         2
        # 012345678901234567890123
        ("a[0]", 1, "indexing is not allowed"),
        ("call.caller[0]", 11, "indexing is not allowed"),
        ("lambda: 1", 0, "lambda is not allowed"),
        ("x + (lambda y: y)", 5, "lambda is not allowed"),
        ("[x for x in tags]", 0, "comprehensions are not allowed"),
        ("{x for x in tags}", 0, "comprehensions are not allowed"),
        ("{x: 1 for x in tags}", 0, "comprehensions are not allowed"),
        ("len(x for x in tags)", 3, "comprehensions are not allowed"),
        ("f'{segment}'", 0, "f-strings are not allowed"),
        ("1 + f'{segment}'", 4, "f-strings are not allowed"),
        ("{'a': 1}", 0, "dict literals are not allowed"),
        ("{1, 2}", 0, "set literals are not allowed"),
        ("(y := 1)", 1, "assignment (:=) is not allowed"),
        ("min(*tags)", 4, "* unpacking is not allowed"),
        ("[*tags]", 1, "* unpacking is not allowed"),
        ("__import__('os')", 0, "names starting with '__' are not allowed: __import__"),
        ("__builtins__", 0, "names starting with '__' are not allowed: __builtins__"),
        ("segment.__class__", 8, "names starting with '__' are not allowed: __class__"),
        ("'x'.__class__", 4, "names starting with '__' are not allowed"),
        ("'x'.y", 4, "attribute access is only allowed on variable names"),
        ("(1).real", 4, "attribute access is only allowed on variable names"),
        ("'abc'.upper().x", 14, "attribute access is only allowed on variable names"),
        ("true.x", 5, "attribute access is only allowed on variable names"),
        ("open('/etc/passwd')", 0, "unknown function 'open'"),
        ("eval('1')", 0, "unknown function 'eval'"),
        ("exec('1')", 0, "unknown function 'exec'"),
        ("getattr(segment, 'upper')", 0, "unknown function 'getattr'"),
        ("x + foo(1)", 4, "unknown function 'foo'"),
        ("segment.replace('a', 'b')", 8, "method 'replace' is not allowed"),
        ("'x'.join(tags)", 4, "method 'join' is not allowed"),
        ("segment.format()", 8, "method 'format' is not allowed"),
        ("call.caller.split()", 12, "method 'split' is not allowed"),
        ("(segment or lower)(x)", 1, "only the listed functions can be called"),
        ("segment.upper()()", 0, "only the listed functions can be called"),
        ("len(segment, tags)", 0, "len() takes 1 argument(s), got 2"),
        ("len()", 0, "len() takes 1 argument(s), got 0"),
        ("round(1, 2, 3)", 0, "round() takes 1 to 2 argument(s), got 3"),
        ("min()", 0, "min() takes 1 or more argument(s), got 0"),
        ("segment.upper(1)", 8, ".upper() takes 0 argument(s), got 1"),
        ("segment.startswith()", 8, ".startswith() takes 1 argument(s), got 0"),
        ("int(amount, base=2)", 12, "keyword arguments are not allowed"),
        ("matches(account, '(')", 17, "invalid regular expression"),
        ("attempts ** 2", 9, "operator ** is not allowed"),
        ("attempts // 2", 9, "operator // is not allowed"),
        ("attempts << 2", 9, "operator << is not allowed"),
        ("attempts | 2", 9, "operator | is not allowed"),
        ("attempts & 2", 9, "operator & is not allowed"),
        ("attempts ^ 2", 9, "operator ^ is not allowed"),
        ("~attempts", 0, "operator ~ is not allowed"),
        ("segment is null", 8, "'is' is not allowed; use == or !="),
        ("segment is not null", 8, "'is not' is not allowed; use == or !="),
        ("b'x'", 0, "bytes literals are not allowed"),
        ("1j", 0, "complex literals are not allowed"),
        ("...", 0, "ellipsis literals are not allowed"),
        ("await x", 0, "await is not allowed"),
        ("x = 1", 2, "syntax error"),
        ("a b", 2, "syntax error"),
        ("attempts +", 10, "syntax error"),
        ("'open", 0, "syntax error: unterminated string literal"),
        ("1 if x", 0, "syntax error: expected 'else'"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        # columns count characters, not UTF-8 bytes, and include leading spaces
        ("'中文' == x.__class__", 10, "names starting with '__' are not allowed"),
        ("  a[0]", 3, "indexing is not allowed"),
        ("'中文中文' ==== b", 9, "syntax error"),
    ],
)
def test_refuses_with_column(text: str, col: int, message: str) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text)
    assert info.value.col == col, info.value.message
    assert info.value.message.startswith(message)
    assert str(info.value) == info.value.message


def test_too_long_expressions_are_refused() -> None:
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("1 + " * 600 + "1")


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ("'a' < 1", 4, "cannot compare text with number using <; convert with int()"),
        ("account > 100", 8, "cannot compare text with number using >"),
        ("account == 62220212", 8, "cannot compare text with number; convert"),
        ("tags < 1", 5, "cannot compare list with number using <"),
        ("flag < 1", 5, "cannot compare bool with number using <"),
        ("int('x')", 0, "int() of text that is not a number"),
        ("int(unknown)", 0, "int() needs text or a number, got null"),
        ("float('nan')", 0, "float() of a number that is not finite"),
        ("float(tags)", 0, "float() needs text or a number, got list"),
        ("1 / 0", 2, "division by zero"),
        ("attempts % 0", 9, "division by zero"),
        ("unknown + 1", 8, "cannot add null and number (is a variable unset?)"),
        ("account + 1", 8, "cannot add text and number; convert"),
        ("segment - 1", 8, "cannot subtract text and number"),
        ("'%d' % 1", 5, "cannot take the remainder of text and number"),
        ("-segment", 0, "cannot negate text"),
        ("+segment", 0, "unary + needs a number"),
        ("flag + 1", 5, "cannot add bool and number"),
        ("'x' * 200000", 4, "text longer than"),
        ("upper(tags)", 0, "upper() needs text, got list"),
        ("len(attempts)", 0, "len() needs text, a list or a record, got number"),
        ("1 in attempts", 2, "'in' needs text, a list or a record on the right"),
        ("1 in 'abc'", 2, "cannot look for number in text"),
        ("round('1')", 0, "round() needs a number"),
        ("round(1.5, 20)", 0, "round() places must be a whole number from 0 to 10"),
        ("max(1, 'a')", 0, "max() needs all numbers or all text, got number, text"),
        ("min(unknown)", 0, "min() needs all numbers or all text, got null"),
        ("max([])", 0, "max() of an empty list"),
        ("matches(account, unknown)", 0, "matches() needs a text pattern, got null"),
        ("matches(account, segment + '(')", 0, "invalid regular expression"),
    ],
)
def test_runtime_errors_are_expr_errors(text: str, col: int, message: str) -> None:
    expression = compile_expr(text)
    with pytest.raises(ExprError) as info:
        expression.evaluate(SCOPE)
    assert info.value.col == col
    assert info.value.message.startswith(message)


def test_runtime_messages_never_show_values() -> None:
    secret = {"pin": "918273"}
    for text in ("pin + 1", "pin < 5", "int(pin + 'x')", "pin == 918273", "-pin"):
        with pytest.raises(ExprError) as info:
            compile_expr(text).evaluate(secret)
        assert "918273" not in str(info.value)


def test_names_lists_the_dotted_names_read() -> None:
    expression = compile_expr(
        "call.caller.startswith('+86') and segment in ['a', vip.level] or len(x) > null"
    )
    assert expression.names == frozenset({"call.caller", "segment", "vip.level", "x"})
    assert compile_expr("true and 1 < 2").names == frozenset()
    assert compile_expr("name.strip()").names == frozenset({"name"})


def test_compile_is_cached_and_keeps_the_source() -> None:
    first = compile_expr("attempts + 1")
    assert compile_expr("attempts + 1") is first
    assert first.source == "attempts + 1"
    assert first.evaluate({"attempts": 1}) == 2
    assert first.evaluate({"attempts": 41}) == 42  # one compiled expression, many scopes


def test_short_circuit_skips_failing_operands() -> None:
    assert ev("false and 1 / 0") is False
    assert ev("true or 1 / 0") is True
    assert ev("1 if true else 1 / 0") == 1
    assert ev("0 > 1 > 1 / 0") is False


def test_nothing_python_leaks_through_names() -> None:
    # names are only ever looked up in the scope, never in Python's namespaces
    assert ev("print") is None
    assert ev("os.system") is None
    assert ev("segment.upper") is None  # a dotted lookup, not the method


def test_lookup_walks_nested_mappings() -> None:
    assert lookup(SCOPE, "balance.limits.daily") == 5000
    assert lookup(SCOPE, "balance.nothing.daily") is None
    assert lookup(SCOPE, "segment.length") is None
    assert lookup({}, "a") is None
    assert lookup({"a": {"b": None}}, "a.b") is None


def test_deeply_nested_expression_is_an_error_not_a_crash() -> None:
    text = "(" * 150 + "1" + ")" * 150
    try:
        value = compile_expr(text).evaluate({})
    except ExprError as exc:
        assert "nested" in exc.message or "syntax error" in exc.message
    else:
        assert value == 1
