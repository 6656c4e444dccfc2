"""Lexical pieces shared by the SIP header parsers: tokens, quoted strings, ;parameters, %HH.

RFC 3261 §25.1. Separators may be surrounded by linear white space (SEMI, EQUAL, COMMA are
``SWS x SWS``), so every split strips; folding was already undone by the message parser.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from ivr.sip.errors import SipParseError

TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# gen-value = token / host / quoted-string; host adds ":" "[" "]" for IPv6 references.
_GEN_VALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

Params = dict[str, str | None]


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN.fullmatch(text) is not None


def split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside quoted strings and <...>.

    Raises:
        SipParseError: A quoted string is not closed (checked only when ``sep`` occurs).
    """
    if sep not in text:
        return [text]  # the common case: one value (a bad quote is the value parser's to find)
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = i = depth = 0
    in_quote = False
    n = len(text)
    while i < n:
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 1  # quoted-pair: the next character is literal
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
        elif c == sep and not depth:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def read_quoted(text: str, start: int = 0) -> tuple[str, int]:
    """Read the quoted string that opens at ``text[start]``.

    Returns:
        The unescaped content and the index just after the closing quote.

    Raises:
        SipParseError: No opening quote there, or no closing quote.
    """
    if text[start : start + 1] != '"':
        raise SipParseError("expected a quoted string")
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            i += 1
            if i == n:
                break
            c = text[i]
        out.append(c)
        i += 1
    raise SipParseError("unterminated quoted string")


def quote_string(value: str) -> str:
    """``value`` as a quoted-string, escaping backslash and double quote."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> Params:
    """Parse ``;name[=value]`` parameters (names lower-cased, values unquoted).

    ``text`` is what follows a URI or sent-by: empty, or starting with ``;`` after optional
    white space. An empty parameter (``;;``) is an error, as RFC 4475 §3.1.2.1 expects.

    Raises:
        SipParseError: Anything but a well-formed parameter list.
    """
    text = text.strip()
    if not text:
        return {}
    if text[0] != ";":
        raise SipParseError(f"unexpected text before parameters: {text[:40]!r}")
    params: Params = {}
    for part in split_top(text[1:], ";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if TOKEN.fullmatch(name) is None:
            raise SipParseError(f"bad parameter name: {name[:40]!r}")
        params[name.lower()] = _param_value(value.strip()) if eq else None
    return params


def _param_value(value: str) -> str:
    if value.startswith('"'):
        content, end = read_quoted(value)
        if end != len(value):
            raise SipParseError("text after a quoted parameter value")
        return content
    if _GEN_VALUE.fullmatch(value) is None:
        raise SipParseError(f"bad parameter value: {value[:40]!r}")
    return value


def format_params(params: Params) -> str:
    """Serialize parameters as ``;name=value``, quoting values that are not tokens or hosts."""
    out: list[str] = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif _GEN_VALUE.fullmatch(value):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote_string(value)}")
    return "".join(out)


def unescape(text: str) -> str:
    """Expand %HH escapes (RFC 3261 §19.1.2); bytes that are not UTF-8 survive as surrogates.

    Raises:
        SipParseError: A ``%`` not followed by two hex digits.
    """
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise SipParseError(f"bad %-escape in {text[:40]!r}")
    return unquote(text, errors="surrogateescape")


def escape(text: str, safe: str) -> str:
    """%-escape every character of ``text`` outside unreserved and ``safe``."""
    return quote(text, safe=safe + "!*'()", errors="surrogateescape")
