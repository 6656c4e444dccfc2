"""Transfer targets against the allow-list: SIP URIs and numbers, never shell globs on text.

``fnmatch("sip:x@evil.example;a=@agents.bank.example", "sip:*@agents.bank.example")`` is true:
a ``*`` crosses ``@``, ``;`` and ``:``, so a glob on the whole target lets a templated target
(built from what the caller typed or said, or what a webhook returned) reach any host. Here a
target is first parsed, strictly, as one of:

* a number: ``+`` optional, then 1 to 32 digits;
* a SIP URI ``sip:USER@HOST[:PORT]`` (or ``sips:``) with no parameters, headers, escapes or
  password: USER is letters, digits and ``-_.!~'()+``; HOST is a domain name or IPv4 address.

An allow-list entry is of the same two forms, with ``*`` and ``?`` allowed in the number (after
its first digit) and in the SIP user only, and ``:*`` for any port of the host. A SIP target
matches an entry when scheme, host (case-insensitive) and port are equal and the user matches
the entry's user glob; a number matches a number entry's glob.
Anything that does not parse is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

_NUMBER = re.compile(r"\+?[0-9]{1,32}")
_NUMBER_PATTERN = re.compile(r"\+?[0-9][0-9*?]{0,31}")  # a fixed first digit: never "any number"
_USER = r"[A-Za-z0-9\-_.!~'()+]{1,64}"
_USER_PATTERN = r"[A-Za-z0-9\-_.!~'()+*?]{1,64}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}\.)*{_LABEL}"
_PORT = r"(?::([0-9]{1,5}))?"
_PORT_PATTERN = r"(?::([0-9]{1,5}|\*))?"  # ":*": any port of that host
_SIP = re.compile(rf"(sips?):({_USER})@({_HOST}){_PORT}")
_SIP_PATTERN = re.compile(rf"(sips?):({_USER_PATTERN})@({_HOST}){_PORT_PATTERN}")
ANY_PORT = -1


@dataclass(frozen=True)
class Target:
    """A parsed transfer target (or allow-list entry): a number, or a SIP user at a host."""

    scheme: str  # "tel" for a number, else sip/sips
    user: str  # the number, or the SIP user (a glob in an entry)
    host: str = ""
    port: int | None = None


def parse_target(text: str, *, pattern: bool = False) -> Target | None:
    """``text`` as a transfer target (``pattern``: an allow-list entry), None when it is neither
    a plain number nor a plain SIP URI (see the module docstring)."""
    number = (_NUMBER_PATTERN if pattern else _NUMBER).fullmatch(text)
    if number:
        return Target("tel", text)
    sip = (_SIP_PATTERN if pattern else _SIP).fullmatch(text)
    if sip is None:
        return None
    scheme, user, host, port = sip.groups()
    if port == "*":
        return Target(scheme.lower(), user, host.lower(), ANY_PORT)
    if port is not None and not 0 < int(port) < 65536:
        return None
    return Target(scheme.lower(), user, host.lower(), int(port) if port else None)


def bad_entry(entry: str) -> str | None:
    """Why ``entry`` cannot be an allow-list entry, or None when it can."""
    if parse_target(entry, pattern=True) is None:
        return (f"transfer_allow entry {entry!r} is neither a number (with * or ?) nor "
                "sip:USER@HOST[:PORT] (* or ? in USER only)")
    return None


def allowed(target: str, entries: tuple[str, ...] | list[str]) -> bool:
    """True when ``target`` parses and matches one of ``entries`` (entries that do not parse
    match nothing)."""
    parsed = parse_target(target)
    if parsed is None:
        return False
    for entry in entries:
        rule = parse_target(entry, pattern=True)
        if rule is not None and _matches(parsed, rule):
            return True
    return False


def _matches(target: Target, rule: Target) -> bool:
    if (target.scheme, target.host) != (rule.scheme, rule.host):
        return False
    if rule.port != ANY_PORT and target.port != rule.port:
        return False
    return fnmatchcase(target.user, rule.user)
