"""Webhook URLs: template values escaped, and the host checked against ivr.yaml's allow-list.

A URL template such as ``{config.bank_api}/accounts/{account}`` takes values the caller chose
(digits typed, words said, fields a previous reply held). Inserted raw, ``account`` =
``1/../../admin?x=`` rewrites the path and query, and a value in the host part could send the
PIN anywhere. So every value is percent-encoded (no character of it is a ``/``, ``?``, ``#``,
``@`` or ``:`` to the URL) except ``config.*`` values, which the operator wrote in ivr.yaml (the
base URL itself). The rendered URL's scheme, host and port must then match an entry of
``webhook_allow`` (ivr.yaml): ``host`` (ports 80 and 443), ``host:port`` or a URL
(``http://host:port/...``: its scheme, host and port count, so an entry can be the same
``${IVR_BANK_API}`` as the variable). Hosts are named exactly: no globs, no subdomains.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ivr.flow.expr import lookup
from ivr.flow.template import compile_template

_DEFAULT_PORTS = {"http": 80, "https": 443}


def render_url(text: str, scope: Mapping[str, Any]) -> str:
    """The URL template ``text`` filled from ``scope``; values escaped (see the module)."""
    out: list[str] = []
    for piece in compile_template(text).pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        value = lookup(scope, piece.name)
        shown = "" if value is None else str(value)
        trusted = piece.name.startswith("config.")
        out.append(shown if trusted else urllib.parse.quote(shown, safe=""))
    return "".join(out)


@dataclass(frozen=True)
class HostRule:
    """One allow-list entry: a host, with the scheme and port when the entry gives them."""

    host: str
    port: int | None = None
    scheme: str | None = None

    def admits(self, scheme: str, host: str, port: int) -> bool:
        if host != self.host or (self.scheme is not None and scheme != self.scheme):
            return False
        if self.port is None:  # no port given: the scheme's own (80, 443), never another
            return port == _DEFAULT_PORTS.get(scheme)
        return port == self.port


def parse_rule(entry: str) -> HostRule | None:
    """``entry`` (``host``, ``host:port`` or an http(s) URL) as a rule; None when it is none."""
    text = entry.strip()
    if "://" not in text:
        text = "//" + text
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower() or None
    if scheme not in (None, "http", "https") or not parts.hostname or parts.username:
        return None
    if any(ch in parts.hostname for ch in "*?[] "):
        return None  # hosts are named exactly: no globs
    return HostRule(parts.hostname.lower(), port, scheme)


def host_allowed(url: str, rules: Iterable[HostRule]) -> bool:
    """True when ``url``'s scheme, host and port match one of ``rules``."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or scheme not in _DEFAULT_PORTS:
        return False
    effective = port if port is not None else _DEFAULT_PORTS[scheme]
    return any(rule.admits(scheme, host, effective) for rule in rules)
